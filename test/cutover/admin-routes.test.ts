// The cutover's admin routes and shadow reads as an operator meets them:
// the routing table in pages, move requests validated strictly (problem+json
// from the catalogue), unknown SKUs, products and moves named, a service
// without a mirror saying so; a move by product followed to its end; and a
// mirror copy that differs found by a shadow read (listed with both values,
// the answer unchanged) and by a live `hotstock reconcile`, which exits 1.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { keys } from '../../src/layout.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { assertProblem } from '../support/assertions.ts';
import { caughtUp, moveEnded, routing, runReconcile, shadowCounts } from '../support/cutover.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { sleep } from '../support/load.ts';
import { adminKey, api, createSku, reserve, startTestService, type TestService } from '../support/service.ts';

const waitMsMax = 20_000;
const prefix = `cutover-admin-${process.pid}/`;
let cluster: EtcdCluster;
let plain: TestService;
let mirrored: TestService;

before(async () => {
  cluster = await startEtcdCluster();
  plain = await startTestService();
  mirrored = await startTestService({}, { mirror: 'etcd', etcdEndpoints: cluster.endpoints, etcdPrefix: prefix });
  for (const base of [plain.url, mirrored.url]) {
    for (const [sku, product] of [
      ['admin-a', 'tee'],
      ['admin-b', 'tee'],
      ['admin-c', 'mug'],
    ]) {
      await createSku(base, sku!, { initialStock: 50, product });
    }
  }
  await caughtUp(mirrored.url);
});

after(async () => {
  for (const service of [plain, mirrored]) {
    await service?.stop();
    service?.remove();
  }
  await cluster?.stop();
});

const moves = (base: string, body: unknown, key = adminKey) =>
  api(base, 'POST', '/v1/admin/routing/moves', { key, body });

describe('without a mirror', () => {
  it('shows every SKU on its one store, in pages', async () => {
    const first = await api<{ items: { sku: string; store: string }[]; nextCursor: string }>(
      plain.url,
      'GET',
      '/v1/admin/routing?limit=2',
      { key: adminKey },
    );
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.items, [
      { sku: 'admin-a', store: 'lmdb', moveId: null, mirrorLagRevisions: 0, mirrorLagSeconds: 0 },
      { sku: 'admin-b', store: 'lmdb', moveId: null, mirrorLagRevisions: 0, mirrorLagSeconds: 0 },
    ]);
    const second = await api<{ items: { sku: string }[]; nextCursor: string | null }>(
      plain.url,
      'GET',
      `/v1/admin/routing?limit=2&cursor=${first.body.nextCursor}`,
      { key: adminKey },
    );
    assert.deepEqual(
      second.body.items.map((item) => item.sku),
      ['admin-c'],
    );
    assert.equal(second.body.nextCursor, null);
  });

  it('refuses a move (409 mirror_not_configured) and knows no move', async () => {
    assertProblem(await moves(plain.url, { to: 'etcd', percent: 10 }), 409, 'mirror_not_configured');
    assertProblem(
      await api(plain.url, 'GET', '/v1/admin/routing/moves/nope', { key: adminKey }),
      404,
      'move_not_found',
    );
    assert.deepEqual((await api(plain.url, 'GET', '/v1/admin/routing/moves', { key: adminKey })).body, { items: [] });
    assert.deepEqual((await api(plain.url, 'GET', '/v1/admin/shadow/mismatches', { key: adminKey })).body, {
      items: [],
    });
  });

  it('keeps the admin routes to admin keys', async () => {
    assertProblem(await api(plain.url, 'GET', '/v1/admin/routing'), 403, 'forbidden');
    assertProblem(await moves(plain.url, { to: 'etcd', percent: 10 }, 'test-client-key'), 403, 'forbidden');
  });
});

describe('with a mirror', () => {
  it('refuses malformed move requests with 400 validation_failed, before anything moves', async () => {
    const bad: unknown[] = [
      {},
      { to: 'etcd' },
      { percent: 10 },
      { to: 'redis', percent: 10 },
      { to: 'etcd', percent: 0 },
      { to: 'etcd', percent: 101 },
      { to: 'etcd', percent: 12.5 },
      { to: 'etcd', percent: '10' },
      { to: 'etcd', percent: 10, product: 'tee' },
      { to: 'etcd', skus: [] },
      { to: 'etcd', skus: ['admin-a', 'admin-a'] },
      { to: 'etcd', skus: ['has space'] },
      { to: 'etcd', product: '' },
      { to: 'etcd', percent: 10, force: true },
      [],
      'etcd',
    ];
    for (const body of bad) assertProblem(await moves(mirrored.url, body), 400, 'validation_failed');
    assert.deepEqual((await routing(mirrored.url)).skus, { lmdb: 3, etcd: 0 });
  });

  it('names unknown SKUs and products (404 sku_not_found) and unknown moves (404 move_not_found)', async () => {
    const unknown = assertProblem(
      await moves(mirrored.url, { to: 'etcd', skus: ['admin-a', 'ghost'] }),
      404,
      'sku_not_found',
    );
    assert.deepEqual(unknown.unknownSkus, ['ghost']);
    assertProblem(await moves(mirrored.url, { to: 'etcd', product: 'ghost' }), 404, 'sku_not_found');
    assertProblem(
      await api(mirrored.url, 'GET', '/v1/admin/routing/moves/ghost', { key: adminKey }),
      404,
      'move_not_found',
    );
  });

  it('moves a product: 202 with the move, which ends done with its SKUs on etcd', async () => {
    const started = await moves(mirrored.url, { to: 'etcd', product: 'tee' });
    assert.equal(started.status, 202);
    const move = started.body as { id: string; state: string; selector: unknown };
    assert.equal(started.headers.get('location'), `/v1/admin/routing/moves/${move.id}`);
    assert.deepEqual(move.selector, { product: 'tee' });
    const ended = await moveEnded(mirrored.url, move.id, waitMsMax);
    assert.equal(ended.state, 'done');
    assert.equal(ended.moved, 2);
    const table = await routing(mirrored.url);
    assert.deepEqual(
      table.items.map((item) => [item.sku, item.store]),
      [
        ['admin-a', 'etcd'],
        ['admin-b', 'etcd'],
        ['admin-c', 'lmdb'],
      ],
    );
    const order = await reserve(mirrored.url, { sku: 'admin-a', qty: 1, userId: 'moved' });
    assert.equal(order.status, 201, 'a moved SKU takes orders on its new store');
  });

  it('finds a mirror copy that differs: by a shadow read, which leaves the answer alone, and by reconcile', async () => {
    const made = await reserve(mirrored.url, { sku: 'admin-c', qty: 2, userId: 'shadowed' });
    assert.equal(made.status, 201);
    const order = made.body as unknown as OrderView;
    await caughtUp(mirrored.url);
    // admin-c is on LMDB: its copy on the etcd mirror is changed behind the service's back.
    const etcd = new EtcdStore({
      client: createEtcdClient({ endpoints: cluster.endpoints }),
      ownsClient: true,
      prefix,
      maxTxnOps: 128,
    });
    const copy = await etcd.get<Record<string, unknown>>(keys.order(order.id));
    assert.ok(copy);
    await etcd.commit([], [{ type: 'put', key: keys.order(order.id), value: { ...copy.value, qty: 3 } }]);
    try {
      const before = await shadowCounts(mirrored.url);
      const read = await api<OrderView>(mirrored.url, 'GET', `/v1/orders/${order.id}`, {
        headers: { 'x-canary': 'shadow' },
      });
      assert.equal(read.status, 200);
      assert.equal(read.body.qty, 2, 'the answer comes from the authoritative store');
      const deadline = Date.now() + waitMsMax;
      while ((await shadowCounts(mirrored.url)).mismatch === before.mismatch) {
        assert.ok(Date.now() < deadline, 'the shadow read is counted');
        await sleep(20);
      }
      const listed = await api<{
        items: {
          kind: string;
          id: string;
          authoritative: { store: string; value: { qty: number } };
          mirror: { store: string; value: { qty: number } };
        }[];
      }>(mirrored.url, 'GET', '/v1/admin/shadow/mismatches', { key: adminKey });
      const [mismatch] = listed.body.items;
      assert.deepEqual(
        [
          mismatch?.kind,
          mismatch?.id,
          mismatch?.authoritative.store,
          mismatch?.authoritative.value.qty,
          mismatch?.mirror.store,
          mismatch?.mirror.value.qty,
        ],
        ['order', order.id, 'lmdb', 2, 'etcd', 3],
      );
      const live = await runReconcile(mirrored.dataDir, cluster.endpoints, prefix);
      assert.equal(live.code, 1, live.stdout + live.stderr);
      assert.match(live.stdout, new RegExp(`"order/${order.id}" \\[differs, authoritative: lmdb\\]`));
    } finally {
      await etcd.commit([], [{ type: 'put', key: keys.order(order.id), value: copy.value }]);
      await etcd.close();
    }
    const mended = await runReconcile(mirrored.dataDir, cluster.endpoints, prefix);
    assert.equal(mended.code, 0, `reconcile against the running service once the copy is mended: ${mended.stdout}`);
  });

  it('refuses an X-Canary value other than shadow (400 validation_failed)', async () => {
    assertProblem(
      await api(mirrored.url, 'GET', '/v1/skus/admin-c', { headers: { 'x-canary': 'yes' } }),
      400,
      'validation_failed',
    );
  });
});
