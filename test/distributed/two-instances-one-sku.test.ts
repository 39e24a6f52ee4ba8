// Two hotstock instances on one real 3-member etcd cluster, selling one hot
// SKU together: exactly the stock is sold, every acknowledged order survives
// the instances' restart, an idempotency key retried on the other instance
// is recognised (one order per key), and `hotstock check --store etcd` finds
// the ledger exact.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { getSku, listAllOrders } from '../support/api-helpers.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { type Answer, call, mapConcurrent, NetworkFailure, sleep } from '../support/load.ts';
import {
  adminKey,
  createSku,
  etcdArgs,
  killIfRunning,
  runCheck,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

const stock = 150;
/** Buyers, one unit each: twice the stock, so the sale ends sold out. */
const buyers = 300;
/** Of those, this many send their key to both instances at once. */
const doubleSenders = 30;
const concurrency = 24;
/** Attempts per key, alternating instances, before the test gives up on it. */
const attemptsMax = 20;
const retryPauseMs = 50;
/** How long the second instance may take to learn of the SKU from the change feed. */
const feedWaitMsMax = 20_000;

let cluster: EtcdCluster;
const prefix = `two-instances-${process.pid}/`;
const data = tempDataDir('hotstock-etcd');
let servers: ServerProcess[] = [];
/** Answers that asked for a retry (5xx) or never came; reported, not asserted: retries must end well. */
let retriedAnswers = 0;

function serveArgs(): string[] {
  return etcdArgs(cluster.endpoints, prefix, ['--etcd-expect-members', '3']);
}

/** Starts both instances; each is tracked as soon as it runs, so cleanup finds it even if the other fails. */
async function startInstances(): Promise<ServerProcess[]> {
  servers = [];
  for (let i = 0; i < 2; i++) servers.push(await spawnServer(data.dir, serveArgs()));
  return servers;
}

before(async () => {
  cluster = await startEtcdCluster({ size: 3 });
});

after(async () => {
  for (const server of servers) await killIfRunning(server);
  await cluster?.stop();
  data.remove();
});

/** Sends one key until it gets a final (non-5xx) answer, starting on `first` and alternating. */
async function reserveUntilAnswered(sku: string, userId: string, key: string, first: number): Promise<Answer> {
  let last = 'no attempt';
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const server = servers[(first + attempt) % servers.length]!;
    try {
      const answer = await call(server.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId },
        idempotencyKey: key,
      });
      if (answer.status < 500) return answer;
      last = `${answer.status} ${JSON.stringify(answer.body)}`;
      retriedAnswers++;
    } catch (error) {
      if (!(error instanceof NetworkFailure)) throw error;
      retriedAnswers++;
      last = error.message;
    }
    await sleep(retryPauseMs);
  }
  throw new Error(`key ${key} got no final answer in ${attemptsMax} attempts; last: ${last}`);
}

describe('two instances on a 3-member etcd cluster, one hot SKU', () => {
  it('sell exactly the stock, keep every acknowledged order across restarts, one order per key', async () => {
    await startInstances();
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const sku = `hot-${process.pid}`;
    await createSku(a.url, sku, { initialStock: stock });
    const seenDeadline = Date.now() + feedWaitMsMax;
    while ((await call(b.url, 'GET', `/v1/skus/${sku}`)).status !== 200) {
      assert.ok(Date.now() < seenDeadline, 'the second instance never learned of the SKU from the change feed');
      await sleep(20);
    }

    const keys = Array.from({ length: buyers }, (_, i) => ({ key: `buy-${process.pid}-${i}`, userId: `u${i}` }));
    const answers = await mapConcurrent(keys, concurrency, async ({ key, userId }, i) => {
      if (i >= doubleSenders) return [await reserveUntilAnswered(sku, userId, key, i % 2)];
      // The same key on both instances at once: at most one order may come of it.
      return Promise.all([reserveUntilAnswered(sku, userId, key, 0), reserveUntilAnswered(sku, userId, key, 1)]);
    });

    const orderOfKey = new Map<string, string>();
    const statuses = new Map<number, number>();
    for (const [i, perKey] of answers.entries()) {
      const ids = new Set<string>();
      for (const answer of perKey) {
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 201) ids.add((answer.body as unknown as OrderView).id);
        else assert.ok([409].includes(answer.status), `unexpected ${answer.status} ${JSON.stringify(answer.body)}`);
      }
      assert.ok(ids.size <= 1, `key ${keys[i]!.key} produced ${ids.size} orders: ${[...ids].join(', ')}`);
      if (ids.size === 1) orderOfKey.set(keys[i]!.key, [...ids][0]!);
    }
    const orderIds = new Set(orderOfKey.values());
    console.log(
      `answers by status: ${JSON.stringify(Object.fromEntries(statuses))}; orders: ${orderIds.size}; retried: ${retriedAnswers}`,
    );
    assert.equal(orderIds.size, stock, 'exactly the stock was sold');
    for (const server of servers) {
      const view = await getSku(server.url, sku);
      assert.deepEqual([view.reserved, view.available, view.total], [stock, 0, stock], `SKU on ${server.url}`);
    }

    // A retry of an acknowledged key on the other instance is a replay of the same order.
    const [replayKey, replayOrder] = [...orderOfKey][0]!;
    const index = keys.findIndex((entry) => entry.key === replayKey);
    for (const server of servers) {
      const replay = await call(server.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: keys[index]!.userId },
        idempotencyKey: replayKey,
      });
      assert.equal(replay.status, 201);
      assert.equal((replay.body as unknown as OrderView).id, replayOrder);
    }

    // Every acknowledged order is still there after both instances are killed and restarted.
    for (const server of servers) await killIfRunning(server);
    await startInstances();
    for (const server of servers) {
      const listed = await listAllOrders(server.url, { sku });
      assert.deepEqual(
        listed.map((order) => order.id).sort(),
        [...orderIds].sort(),
        `orders listed by ${server.url} after restart`,
      );
      for (const id of [...orderIds].slice(0, 20)) {
        const got = await call(server.url, 'GET', `/v1/orders/${id}`);
        assert.equal(got.status, 200, `order ${id} on ${server.url}`);
      }
      const view = await getSku(server.url, sku);
      assert.equal(view.reserved, stock);
    }
    const status = await call(servers[0]!.url, 'GET', '/v1/admin/status', { key: adminKey });
    assert.equal(status.status, 200);
    console.log(`admin status: ${JSON.stringify(status.body)}`);

    for (const server of servers) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    const check = await runCheck(data.dir, etcdArgs(cluster.endpoints, prefix));
    console.log(`hotstock check --store etcd: ${check.stdout.trim()}`);
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    assert.match(check.stdout, /ledger exact/);
  });
});
