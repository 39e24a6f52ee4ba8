// Retiring a store after a cutover, and what keeps that safe. A service on
// LMDB with an etcd mirror moves every SKU to etcd. Started alone, LMDB is
// refused (its SKUs are on etcd, and it may lack their last commits); after
// a SIGKILL, etcd alone is refused too (the stop did not say it held
// everything), and so is an instance in distributed mode while the mirrored
// service runs; after a clean stop, etcd alone starts (in distributed mode),
// serves every order made before and takes new ones, and a mirrored service
// on that etcd is refused while it runs. Attaching the old LMDB again as
// --store is refused (etcd ran alone: it holds the data); as the mirror of
// etcd, it is copied afresh, and both stores end equal and exact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import {
  assertBothLedgersExact,
  assertReconciled,
  caughtUp,
  mirrorArgs,
  moveEnded,
  routing,
  startMove,
} from '../support/cutover.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { call } from '../support/load.ts';
import {
  createSku,
  etcdArgs,
  etcdServeArgs,
  killSpawnedServers,
  reserve,
  runHotstock,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

const prefix = `cutover-retire-${process.pid}/`;
const data = tempDataDir('hotstock-retire');
let cluster: EtcdCluster;

before(async () => {
  cluster = await startEtcdCluster();
});

after(async () => {
  await killSpawnedServers();
  await cluster?.stop();
  data.remove();
});

async function stop(server: ServerProcess, signal: NodeJS.Signals): Promise<void> {
  server.child.kill(signal);
  await server.exited;
}

/** `hotstock serve` that must refuse to start: exit 1 with a message matching `reason`. */
async function refused(args: string[], reason: RegExp): Promise<void> {
  const run = await runHotstock([
    'serve',
    '--data-dir',
    data.dir,
    '--port',
    '0',
    '--admin-keys',
    'test-admin-key',
    '--client-keys',
    'test-client-key',
    ...args,
  ]);
  assert.equal(run.code, 1, `it started, or failed otherwise:\n${run.stdout}${run.stderr}`);
  assert.match(run.stderr, reason);
}

async function orderOk(base: string, sku: string, userId: string): Promise<string> {
  const made = await reserve(base, { sku, qty: 1, userId });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  return (made.body as unknown as OrderView).id;
}

test('a store runs alone only once a clean stop left every SKU on it; the other is copied afresh when attached again', async () => {
  const skus = ['retire-a', 'retire-b', 'retire-c'];
  const mirrored = () => spawnServer(data.dir, mirrorArgs(cluster.endpoints, prefix));
  let server = await mirrored();
  for (const sku of skus) await createSku(server.url, sku, { initialStock: 100 });
  const orders = [await orderOk(server.url, 'retire-a', 'before-move')];
  await caughtUp(server.url);
  const move = await startMove(server.url, { to: 'etcd', percent: 100 });
  assert.equal((await moveEnded(server.url, move.id)).state, 'done');
  orders.push(await orderOk(server.url, 'retire-b', 'on-etcd'));
  await stop(server, 'SIGKILL');

  await refused([], /serves in a cutover with a mirror/);
  await refused(etcdServeArgs(cluster.endpoints, prefix), /serves in a cutover with a mirror/);

  server = await mirrored();
  await caughtUp(server.url);
  await refused(etcdServeArgs(cluster.endpoints, prefix), /serves in a cutover with a mirror/);
  await stop(server, 'SIGTERM');
  await refused([], /serves in a cutover with a mirror/);

  server = await spawnServer(data.dir, etcdServeArgs(cluster.endpoints, prefix));
  for (const id of orders) assert.equal((await call(server.url, 'GET', `/v1/orders/${id}`)).status, 200);
  orders.push(await orderOk(server.url, 'retire-c', 'etcd-alone'));
  await refused([...etcdArgs(cluster.endpoints, prefix), '--mirror', 'lmdb'], /distributed mode .*are running/);
  await stop(server, 'SIGTERM');

  await refused(mirrorArgs(cluster.endpoints, prefix), /--mirror etcd has run alone/);

  server = await spawnServer(data.dir, [...etcdArgs(cluster.endpoints, prefix), '--mirror', 'lmdb']);
  await caughtUp(server.url);
  const table = await routing(server.url);
  assert.deepEqual(table.skus, { etcd: 3, lmdb: 0 }, 'the routing started over: every SKU on etcd');
  for (const id of orders) assert.equal((await call(server.url, 'GET', `/v1/orders/${id}`)).status, 200);
  await stop(server, 'SIGTERM');
  await assertBothLedgersExact(data.dir, cluster.endpoints, prefix);
  console.log(`# ${await assertReconciled(data.dir, cluster.endpoints, prefix)}`);
});
