// hotstock on a 3-member etcd cluster while members die: losing one member,
// then the leader, mid-load, the service keeps taking orders; losing all of
// them, the circuit breaker opens and requests come back at once with 503
// `backend_unavailable` and Retry-After instead of hanging; when etcd is back
// the service recovers by itself, and no acknowledged order was lost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { type Answer, call, NetworkFailure, runWorkers, sleep } from '../support/load.ts';
import {
  adminKey,
  createSku,
  etcdArgs,
  etcdServeArgs,
  killIfRunning,
  runCheck,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

const loadWorkers = 8;
/** Attempts one key gets (same key each time) before the worker gives up on it. */
const keyAttemptsMax = 200;
const retryPauseMs = 100;
/** Orders that must be acknowledged after each disruption to call the service "continuing". */
const ordersAfterDisruption = 30;
/** How long each phase may take to show progress; generous, the machine is shared. */
const phaseWaitMsMax = 60_000;
/** A request while etcd is down must come back within this (it is bounded by the etcd call timeouts). */
const downAnswerMsMax = 15_000;
/** Requests sent while every member is down. */
const downRequests = 20;

let cluster: EtcdCluster;
let server: ServerProcess | undefined;
const data = tempDataDir('hotstock-etcd-outage');
const prefix = `outage-${process.pid}/`;

before(async () => {
  cluster = await startEtcdCluster({ size: 3 });
});

after(async () => {
  await killIfRunning(server);
  await cluster?.stop();
  data.remove();
});

interface Load {
  acked: Map<string, string>;
  stop: () => Promise<void>;
}

/** Workers reserving one unit each with fresh keys, retrying a key (same key) until it gets a final answer. */
function startLoad(url: string, sku: string): Load {
  const acked = new Map<string, string>();
  let stopping = false;
  let sequence = 0;
  const done = runWorkers(loadWorkers, async (worker) => {
    while (!stopping) {
      const key = `outage-${worker}-${sequence++}`;
      for (let attempt = 0; attempt < keyAttemptsMax && !stopping; attempt++) {
        try {
          const answer = await call(url, 'POST', '/v1/orders', {
            body: { sku, qty: 1, userId: `w${worker}` },
            idempotencyKey: key,
          });
          if (answer.status === 201) {
            acked.set(key, (answer.body as unknown as OrderView).id);
            break;
          }
          assert.equal(answer.status, 503, `unexpected ${answer.status} ${JSON.stringify(answer.body)}`);
        } catch (error) {
          if (!(error instanceof NetworkFailure)) throw error;
        }
        await sleep(retryPauseMs);
      }
    }
  });
  return {
    acked,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

async function waitForMoreOrders(load: Load, what: string): Promise<void> {
  const target = load.acked.size + ordersAfterDisruption;
  const deadline = Date.now() + phaseWaitMsMax;
  while (load.acked.size < target) {
    assert.ok(Date.now() < deadline, `${what}: only ${load.acked.size}/${target} orders within ${phaseWaitMsMax} ms`);
    await sleep(50);
  }
}

async function breakerState(url: string): Promise<string | undefined> {
  const metrics = await call<string>(url, 'GET', '/metrics');
  return /hotstock_backend_breaker_state\{state="([a-z-]+)"\} 1\b/.exec(metrics.body)?.[1];
}

describe('etcd members die under load', () => {
  it('one member, then the leader: service continues; all: fast 503 backend_unavailable; back: recovers', async () => {
    server = await spawnServer(
      data.dir,
      etcdServeArgs(cluster.endpoints, prefix, ['--etcd-expect-members', '3', '--breaker-half-open-ms', '1000']),
    );
    const sku = `outage-${process.pid}`;
    await createSku(server.url, sku, { initialStock: 1_000_000 });
    const load = startLoad(server.url, sku);
    try {
      await waitForMoreOrders(load, 'before any failure');

      const leader = await cluster.leaderIndex();
      const follower = (leader + 1) % 3;
      await cluster.kill(follower);
      await waitForMoreOrders(load, `member ${follower} (a follower) killed`);
      await cluster.start(follower);

      const oldLeader = await cluster.leaderIndex();
      await cluster.kill(oldLeader);
      await waitForMoreOrders(load, `member ${oldLeader} (the leader) killed`);
      await cluster.start(oldLeader);
      await waitForMoreOrders(load, 'every member back');
    } finally {
      await load.stop();
    }
    console.log(`orders acknowledged while members died: ${load.acked.size}`);

    for (let i = 0; i < 3; i++) await cluster.kill(i);
    const codes: string[] = [];
    const answerMs: number[] = [];
    for (let i = 0; i < downRequests; i++) {
      const sentAt = performance.now();
      const answer: Answer = await call(server.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: 'down' },
        idempotencyKey: `down-${i}`,
        timeoutMs: downAnswerMsMax,
      });
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      codes.push((answer.body as { code: string }).code);
      answerMs.push(performance.now() - sentAt);
    }
    console.log(
      `answers with every member down: ${codes.join(',')}; ms each: ${answerMs.map((ms) => ms.toFixed(0)).join(',')}`,
    );
    assert.equal(codes.at(-1), 'backend_unavailable', 'once the breaker is open, requests fail fast');
    assert.equal(await breakerState(server.url), 'open');
    const raw = await fetch(`${server.url}/v1/orders`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test-client-key',
        'idempotency-key': 'down-headers',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ sku, qty: 1, userId: 'down' }),
      signal: AbortSignal.timeout(downAnswerMsMax),
    });
    assert.equal(raw.status, 503);
    assert.ok(Number(raw.headers.get('retry-after')) >= 1, 'Retry-After tells the client when to come back');
    const status = await call(server.url, 'GET', '/v1/admin/status', { key: adminKey, timeoutMs: downAnswerMsMax });
    assert.equal(status.status, 200, 'the admin status answers while etcd is down');
    assert.equal((status.body as { breaker: { state: string } }).breaker.state, 'open');

    // Members of a cluster restarted together become healthy together: start() waits on the last one.
    for (let i = 0; i < 3; i++) await cluster.start(i);
    const deadline = Date.now() + phaseWaitMsMax;
    let recovered: string | undefined;
    while (recovered === undefined) {
      assert.ok(Date.now() < deadline, `no order accepted within ${phaseWaitMsMax} ms of etcd coming back`);
      const answer: Answer = await call(server.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: 'back' },
        idempotencyKey: 'back-1',
      });
      if (answer.status === 201) recovered = (answer.body as unknown as OrderView).id;
      else await sleep(200);
    }
    assert.equal(await breakerState(server.url), 'closed');

    for (const [key, id] of load.acked) {
      const got: Answer = await call(server.url, 'GET', `/v1/orders/${id}`);
      assert.equal(got.status, 200, `acknowledged order ${id} (key ${key}) is gone`);
    }
    server.child.kill('SIGTERM');
    await server.exited;
    const check = await runCheck(data.dir, etcdArgs(cluster.endpoints, prefix));
    console.log(`hotstock check --store etcd: ${check.stdout.trim()}`);
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
  });
});
