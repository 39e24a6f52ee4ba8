// etcd dies while it is only the mirror. A real server process on LMDB, with
// every SKU on LMDB and etcd as the mirror, takes reservations from
// concurrent clients; etcd is killed. Reservations on the LMDB SKUs go on,
// every one answered 201; the mirror's breaker opens, its lag and outbox
// grow. etcd comes back: the backlog drains by itself, both ledgers are
// exact and reconcile finds no difference.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertBothLedgersExact, assertReconciled, caughtUp, metric, mirrorArgs, routing } from '../support/cutover.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { type Answer, call, mapConcurrent, pick, runWorkers, sleep } from '../support/load.ts';
import { createSku, killIfRunning, type ServerProcess, spawnServer, tempDataDir } from '../support/service.ts';

const skuCount = 10;
const workers = 8;
const ordersBefore = 50;
const ordersWhileDown = 300;
const ordersAfter = 50;
const waitMsMax = 60_000;

const prefix = `cutover-outage-${process.pid}/`;
const data = tempDataDir('hotstock-mirror-outage');
let cluster: EtcdCluster;
let server: ServerProcess | undefined;

before(async () => {
  cluster = await startEtcdCluster();
});

after(async () => {
  await killIfRunning(server);
  await cluster?.stop();
  data.remove();
});

const skuIds = Array.from({ length: skuCount }, (_, i) => `outage-${i}`);
const lag = (base: string) => metric(base, 'hotstock_mirror_lag_revisions', '{from="lmdb",to="etcd"}');

function startLoad(base: string) {
  const created: string[] = [];
  const refused: string[] = [];
  let stopping = false;
  let sequence = 0;
  const done = runWorkers(workers, async (worker) => {
    while (!stopping) {
      const key = `outage-${worker}-${sequence++}`;
      const answer: Answer = await call(base, 'POST', '/v1/orders', {
        body: { sku: pick(Math.random, skuIds), qty: 1, userId: `w${worker}-${sequence}` },
        idempotencyKey: key,
      });
      if (answer.status === 201) created.push(answer.body.id as string);
      else refused.push(`${key}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
  });
  return {
    created,
    refused,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

async function until(what: string, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + waitMsMax;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `${what} within ${waitMsMax} ms`);
    await sleep(50);
  }
}

test('etcd killed while it is the mirror: LMDB SKUs go on, the backlog drains when etcd is back', async () => {
  server = await spawnServer(data.dir, [
    ...mirrorArgs(cluster.endpoints, prefix),
    '--breaker-half-open-ms',
    '500',
    '--breaker-failures',
    '2',
  ]);
  const base = server.url;
  await mapConcurrent(skuIds, 4, (sku) => createSku(base, sku, { initialStock: 1_000_000 }));
  await caughtUp(base);
  const load = startLoad(base);
  try {
    await until('orders before the outage', () => load.created.length >= ordersBefore);
    await cluster.kill(0);
    const atKill = load.created.length;
    await until('orders while etcd is down', () => load.created.length >= atKill + ordersWhileDown);
    // Open, or half-open while a probe call waits for its deadline: not closed.
    await until(
      'the mirror breaker opens',
      async () => (await metric(base, 'hotstock_mirror_breaker_state', '{from="lmdb",to="etcd",state="closed"}')) === 0,
    );
    const backlog = await lag(base);
    const outbox = await metric(base, 'hotstock_mirror_outbox_entries', '{store="lmdb"}');
    const table = await routing(base);
    const direction = table.mirrors.find((mirror) => mirror.from === 'lmdb')!;
    console.log(
      `# etcd down: ${load.created.length - atKill} orders acknowledged; mirror lag ${backlog} commits, outbox ${outbox} entries, ${JSON.stringify(direction)}`,
    );
    assert.ok(backlog > 0 && outbox >= backlog, 'the outbox holds what the mirror could not apply');
    assert.ok(
      (direction as { lastError?: string | null }).lastError,
      'the routing table says why the mirror is behind',
    );
    const sample = load.created.slice(-20);
    for (const id of sample) assert.equal((await call(base, 'GET', `/v1/orders/${id}`)).status, 200);

    const restartedAt = Date.now();
    await cluster.start(0);
    const atReturn = load.created.length;
    await until('orders after etcd returns', () => load.created.length >= atReturn + ordersAfter);
    await until('the backlog drains', async () => (await lag(base)) < backlog);
    console.log(`# etcd back: the mirror went below its backlog of ${backlog} within ${Date.now() - restartedAt} ms`);
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.refused, [], 'every reservation was answered 201, etcd down or not');
  await caughtUp(base, waitMsMax);
  server.child.kill('SIGTERM');
  await server.exited;
  await assertBothLedgersExact(data.dir, cluster.endpoints, prefix);
  console.log(
    `# ${load.created.length} orders; hotstock reconcile: ${await assertReconciled(data.dir, cluster.endpoints, prefix)}`,
  );
});
