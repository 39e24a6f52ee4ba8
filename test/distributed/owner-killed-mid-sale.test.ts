// The instance that owns the hot SKU is SIGKILLed mid-sale, three instances
// on a 3-member etcd cluster, buyers spread over all of them. Its lease
// lapses and another instance takes the SKU within the lease time and a
// bound. Meanwhile the survivors answer fast: 503 `owner_unavailable` with
// Retry-After, never a wrong answer (the stock never runs out, so anything
// but 201 or 503 is wrong). Buyers retry with the same key on a live
// instance: a key whose request was in flight to the dead owner, or that
// got a 503, ends with exactly one order; a key acknowledged before the kill
// replays. The ledger is exact.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { getSku, listAllOrders } from '../support/api-helpers.ts';
import { instancesWithSku, useEtcdCluster } from '../support/cluster.ts';
import { type Answer, call, NetworkFailure, runWorkers, sleep } from '../support/load.ts';
import { etcdArgs, runCheck, type ServerProcess } from '../support/service.ts';

const leaseTtlS = 2;
/** Takeover must come within the lease time plus this (generous: the machine is shared). */
const takeoverSlackMs = 20_000;
/** A 503 must come at least this fast: no forward waits on a dead owner (generous, for the same reason). */
const fastAnswerMsMax = 5_000;
const workers = 12;
const ackedBeforeKill = 150;
const ackedAfterKill = 150;
/** Attempts one key gets, on live instances in turn, before the test gives up on it. */
const keyAttemptsMax = 100;
const retryPauseMs = 100;
const phaseWaitMsMax = 60_000;

const prefix = `owner-killed-${process.pid}/`;
const fixture = useEtcdCluster('hotstock-owner-killed', 3);

interface Sent {
  key: string;
  server: ServerProcess;
  sentAtMs: number;
  answeredMs: number;
  answer: Answer | undefined;
}

interface Sale {
  /** Key -> the order it got, once acknowledged. */
  acked: Map<string, string>;
  sent: Sent[];
  dead: Set<ServerProcess>;
  stop(): Promise<void>;
}

/** Workers buying one unit per key on every live instance in turn, each key retried until it gets a 201. */
function startSale(servers: readonly ServerProcess[], sku: string): Sale {
  const sale: Sale = { acked: new Map(), sent: [], dead: new Set(), stop: async () => {} };
  let stopping = false;
  let sequence = 0;
  const done = runWorkers(workers, async (worker) => {
    while (!stopping) {
      const key = `killed-${worker}-${sequence++}`;
      for (let attempt = 0; !sale.acked.has(key); attempt++) {
        assert.ok(attempt < keyAttemptsMax, `key ${key} got no 201 in ${keyAttemptsMax} attempts`);
        const live = servers.filter((server) => !sale.dead.has(server));
        const server = live[(worker + attempt + sequence) % live.length]!;
        const sent: Sent = { key, server, sentAtMs: performance.now(), answeredMs: 0, answer: undefined };
        try {
          sent.answer = await call(server.url, 'POST', '/v1/orders', {
            body: { sku, qty: 1, userId: key },
            idempotencyKey: key,
          });
        } catch (error) {
          if (!(error instanceof NetworkFailure)) throw error;
        }
        sent.answeredMs = performance.now() - sent.sentAtMs;
        sale.sent.push(sent);
        if (sent.answer?.status === 201) sale.acked.set(key, (sent.answer.body as unknown as OrderView).id);
        else await sleep(retryPauseMs);
      }
    }
  });
  sale.stop = async () => {
    stopping = true;
    await done;
  };
  return sale;
}

async function waitForAcks(sale: Sale, count: number, what: string): Promise<void> {
  const target = sale.acked.size + count;
  const deadline = Date.now() + phaseWaitMsMax;
  while (sale.acked.size < target) {
    assert.ok(Date.now() < deadline, `${what}: only ${sale.acked.size}/${target} orders`);
    await sleep(20);
  }
}

/** Only 201 and fast 503s with Retry-After; network failures only from the dead owner. */
function assertAnswers(sale: Sale, owner: ServerProcess): void {
  const counts: Record<string, number> = {};
  let slowest503Ms = 0;
  for (const sent of sale.sent) {
    const answer = sent.answer;
    const code = (answer?.body as { code?: string } | undefined)?.code;
    const label = answer === undefined ? 'no answer' : `${answer.status}${code ? ` ${code}` : ''}`;
    counts[label] = (counts[label] ?? 0) + 1;
    if (answer === undefined) {
      assert.equal(sent.server, owner, 'only the killed owner leaves requests unanswered');
      continue;
    }
    if (answer.status === 201) continue;
    assert.equal(answer.status, 503, `a wrong answer: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.ok(Number(answer.headers?.get('retry-after')) >= 1, 'a 503 says when to come back (Retry-After)');
    slowest503Ms = Math.max(slowest503Ms, sent.answeredMs);
  }
  console.log(`answers: ${JSON.stringify(counts)}; slowest 503: ${slowest503Ms.toFixed(0)} ms`);
  assert.ok(slowest503Ms <= fastAnswerMsMax, `a 503 took ${slowest503Ms.toFixed(0)} ms`);
}

describe('the owner of the hot SKU is SIGKILLed mid-sale', () => {
  it('another instance takes over in time, answers meanwhile are fast 503s, every key is decided once', async () => {
    const sku = `killed-${process.pid}`;
    const extra = ['--cluster-lease-ttl-s', String(leaseTtlS)];
    const { servers, owner, others } = await instancesWithSku(fixture, {
      count: 3,
      prefix,
      sku,
      stock: 1_000_000,
      extra,
    });

    const sale = startSale(servers, sku);
    let takeoverMs: number;
    const ackedBefore = new Map<string, string>();
    try {
      await waitForAcks(sale, ackedBeforeKill, 'before the kill');
      for (const [key, id] of sale.acked) ackedBefore.set(key, id);
      const killedAtMs = performance.now();
      owner.child.kill('SIGKILL');
      sale.dead.add(owner);
      await owner.exited;
      // Takeover: the first key first sent after the kill that a survivor acknowledges.
      for (;;) {
        const first = sale.sent.find((sent) => sent.sentAtMs > killedAtMs && sent.answer?.status === 201);
        if (first !== undefined) {
          takeoverMs = first.sentAtMs + first.answeredMs - killedAtMs;
          break;
        }
        assert.ok(performance.now() - killedAtMs < leaseTtlS * 1000 + takeoverSlackMs, 'no takeover in time');
        await sleep(20);
      }
      await waitForAcks(sale, ackedAfterKill, 'after the takeover');
    } finally {
      await sale.stop();
    }
    console.log(
      `takeover ${takeoverMs.toFixed(0)} ms after the kill (lease ${leaseTtlS} s); orders: ${sale.acked.size}`,
    );
    assert.ok(takeoverMs <= leaseTtlS * 1000 + takeoverSlackMs);
    assertAnswers(sale, owner);

    // Keys acknowledged before the kill replay, the same order, on the survivors.
    for (const [key, id] of [...ackedBefore].slice(0, 20)) {
      const replay = await call<OrderView>(others[0]!.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: key },
        idempotencyKey: key,
      });
      assert.deepEqual([replay.status, replay.body.id], [201, id], `replay of ${key}`);
    }
    // Every order is one acknowledged key's, and every acknowledged key has its order: decided once each.
    const listed = await listAllOrders(others[0]!.url, { sku });
    assert.deepEqual(listed.map((order) => order.id).sort(), [...new Set(sale.acked.values())].sort());
    assert.equal(sale.acked.size, new Set(sale.acked.values()).size, 'no two keys share an order');
    assert.equal((await getSku(others[1]!.url, sku)).reserved, sale.acked.size);

    for (const server of others) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    const check = await runCheck(fixture.dataDir, etcdArgs(fixture.etcd.endpoints, prefix));
    console.log(`hotstock check --store etcd: ${check.stdout.trim()}`);
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
  });
});
