// Must show 3: the legacy shirt layout imported by `hotstock migrate --legacy`
// passes `hotstock check`, and `hotstock serve` sells from it (a real HTTP
// reservation succeeds, sold-out is respected, per-user limits hold). Also a
// `--transform` module, and flags that are refused with their name.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { RawDestination } from '../../src/migrate/raw-destination.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { etcdClient, runMigrate } from '../support/migrate.ts';
import {
  api,
  killIfRunning,
  reserve,
  runCheck,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

let cluster: EtcdCluster;
let client: Etcd3;
const dirs: { remove: () => void }[] = [];
const nowMs = Date.now();

function dataDir(label: string): string {
  const dir = tempDataDir(label);
  dirs.push(dir);
  return dir.dir;
}

const shirts: Record<string, object> = {
  '007': { name: 'Piggy Shirt', size: 'M', color: 'red', stock: 120, price: 19.99, limit: 2 },
  '008': { name: 'Piggy Shirt', size: 'L', color: 'pink', stock: 1, price: 21.5 },
  '009': { name: 'Piggy Shirt', size: 'S', color: 'black', stock: 0, price: 19.99, limit: 3 },
};
const orders: Record<string, object> = {
  a1: { sku: '007', qty: 1, user: 'u42', status: 'created', ts: nowMs },
  a2: { sku: '007', qty: 2, user: 'u43', status: 'paid', ts: nowMs - 60_000 },
  a3: { sku: '007', qty: 1, user: 'u44', status: 'shipped', ts: nowMs - 120_000 },
  a4: { sku: '007', qty: 3, user: 'u45', status: 'cancelled', ts: nowMs - 180_000 },
  a5: { sku: '008', qty: 1, user: 'u42', status: 'completed', ts: nowMs - 240_000 },
  a6: { sku: '009', qty: 2, user: 'u46', status: 'expired', ts: nowMs - 300_000 },
  a7: { sku: '009', qty: 1, user: 'u47', status: 'created', ts: nowMs },
};

before(async () => {
  cluster = await startEtcdCluster();
  client = etcdClient(cluster.endpoints);
  for (const [sku, shirt] of Object.entries(shirts))
    await client.put(`shop/shirt:sku:${sku}`).value(JSON.stringify(shirt));
  for (const [id, order] of Object.entries(orders)) await client.put(`shop/order:${id}`).value(JSON.stringify(order));
  await client.put('shop/config:banner').value('not a shirt or an order');
});

after(async () => {
  client?.close();
  await cluster?.stop();
  for (const dir of dirs) dir.remove();
});

test('a legacy import passes hotstock check, and hotstock serve sells from it', async () => {
  const dir = dataDir('hotstock-migrate-legacy');
  const migrated = await runMigrate([
    '--etcd-endpoints',
    cluster.endpoints[0]!,
    '--prefix',
    'shop/',
    '--data-dir',
    dir,
    '--legacy',
    '--verify',
  ]);
  process.stdout.write(migrated.stdout);
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.match(migrated.stdout, /skipped 1 keys/);
  assert.match(migrated.stdout, /source and destination agree/);

  const check = await runCheck(dir);
  process.stdout.write(check.stdout);
  assert.equal(check.code, 0, check.stdout);
  assert.match(check.stdout, /checked 3 SKUs and 7 orders .*: ledger exact/);

  let server: ServerProcess | undefined;
  try {
    server = await spawnServer(dir);
    const sku = await api(server.url, 'GET', '/v1/skus/007');
    assert.equal(sku.status, 200);
    // stock 120 was what was still available; created (1) + paid/shipped (3) hold the rest.
    assert.deepEqual(
      { ...sku.body, version: undefined },
      {
        sku: '007',
        product: 'piggy-shirt',
        size: 'M',
        color: 'red',
        priceCents: 1999,
        maxPerUser: 2,
        total: 124,
        reserved: 1,
        sold: 3,
        available: 120,
        version: undefined,
      },
    );
    const order = await api(server.url, 'GET', '/v1/orders/a2');
    assert.equal(order.status, 200);
    assert.equal(order.body.state, 'paid');

    const first = await reserve(server.url, { sku: '008', qty: 1, userId: 'buyer-1' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const soldOut = await reserve(server.url, { sku: '008', qty: 1, userId: 'buyer-2' });
    assert.equal(soldOut.status, 409);
    assert.equal(soldOut.body.code, 'sold_out');
    const none = await reserve(server.url, { sku: '009', qty: 1, userId: 'buyer-3' });
    assert.equal(none.body.code, 'sold_out');
    // u42 holds one unit of 007 from the legacy system; the limit is 2.
    assert.equal((await reserve(server.url, { sku: '007', qty: 1, userId: 'u42' })).status, 201);
    const limited = await reserve(server.url, { sku: '007', qty: 1, userId: 'u42' });
    assert.equal(limited.body.code, 'per_user_limit_exceeded');
    const listed = await api(server.url, 'GET', '/v1/skus?product=piggy-shirt');
    assert.equal((listed.body.items as unknown[]).length, 3);
  } finally {
    await killIfRunning(server);
  }
  assert.equal((await runCheck(dir)).code, 0, 'the ledger stays exact after selling');
});

test('a --transform module maps source keys to records', async () => {
  const dir = dataDir('hotstock-migrate-transform');
  const module = join(dir, '..', `transform-${process.pid}.mjs`);
  writeFileSync(
    module,
    `export default function transform({ keyText, value }) {
  if (!keyText.startsWith('shop/shirt:sku:')) return null;
  const shirt = JSON.parse(value.toString('utf8'));
  return { kind: 'sku', sku: 'tx-' + keyText.slice('shop/shirt:sku:'.length), product: 'tee', size: shirt.size,
    color: shirt.color, priceCents: Math.round(shirt.price * 100), maxPerUser: null, available: shirt.stock };
}
`,
  );
  dirs.push({ remove: () => writeFileSync(module, '') });
  const args = [
    '--etcd-endpoints',
    cluster.endpoints[0]!,
    '--prefix',
    'shop/',
    '--data-dir',
    dir,
    '--transform',
    module,
  ];
  const migrated = await runMigrate(args);
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.match(migrated.stdout, /skipped 8 keys/);
  const check = await runCheck(dir);
  assert.match(check.stdout, /checked 3 SKUs and 0 orders/);
  // A resume with another mapping is refused.
  const mismatched = await runMigrate([
    '--etcd-endpoints',
    cluster.endpoints[0]!,
    '--prefix',
    'shop/',
    '--data-dir',
    dir,
    '--legacy',
    '--resume',
  ]);
  assert.equal(mismatched.code, 2);
  assert.match(mismatched.stderr, /holds a migration of prefix "shop\/", mapping transform:[0-9a-f]{64}/);
});

test('bad flags are refused, naming the flag', async () => {
  const endpoint = ['--etcd-endpoints', cluster.endpoints[0]!, '--data-dir', dataDir('hotstock-migrate-flags')];
  const cases: [string[], RegExp][] = [
    [['--chunk-size', '0'], /--chunk-size must be an integer from 1 to 10000/],
    [['--chunk-size', 'lots'], /--chunk-size must be an integer/],
    [['--etcd-endpoints', 'not a url'], /--etcd-endpoints: "not a url" is not a URL/],
    [['--mapping', 'json'], /--mapping.*json.*Allowed choices are raw, legacy/s],
    [['--follow', '--legacy'], /--follow .* needs --mapping raw/],
    [['--transform', 'x.mjs', '--legacy'], /--transform and --mapping legacy exclude each other/],
    [['--dry-run', '--resume'], /--dry-run writes nothing/],
    [['--transform', '/nonexistent/transform.mjs'], /--transform \/nonexistent\/transform.mjs/],
  ];
  for (const [args, message] of cases) {
    const result = await runMigrate([...endpoint, ...args]);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
  }
  const fromEnv = await runMigrate(endpoint, { HOTSTOCK_CHUNK_SIZE: '99999' });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /--chunk-size must be an integer from 1 to 10000, got "99999"/);
});

test('--verify names every key that differs and exits 1', async () => {
  const dir = dataDir('hotstock-migrate-tampered');
  const args = ['--etcd-endpoints', cluster.endpoints[0]!, '--prefix', 'shop/', '--data-dir', dir];
  assert.equal((await runMigrate(args)).code, 0);
  const destination = new RawDestination(dir);
  try {
    const checkpoint = (await destination.checkpoint())!;
    await destination.applyChanges(
      [
        { key: Buffer.from('shop/order:a1'), value: Buffer.from('{"tampered":true}') },
        { key: Buffer.from('shop/order:a2'), value: undefined },
        { key: Buffer.from('shop/order:zz\u0000extra'), value: Buffer.from('not in etcd') },
      ],
      checkpoint,
    );
  } finally {
    await destination.close();
  }
  const verified = await runMigrate([...args, '--verify']);
  process.stdout.write(verified.stdout);
  assert.equal(verified.code, 1, verified.stderr);
  assert.match(verified.stdout, /differs: "shop\/order:a1" .*: value differs/);
  assert.match(verified.stdout, /differs: "shop\/order:a2" .*: missing in destination/);
  assert.match(verified.stdout, /differs: "shop\/order:zz\\u0000extra" .*: not in source/);
  assert.match(verified.stdout, /verify: 11 keys .*: 3 differing keys/);
});
