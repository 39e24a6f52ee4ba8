// The owner of a hot SKU is paused (SIGSTOP) under load, past its lease:
// the other instance takes the SKU and sells it. When the paused owner
// resumes (SIGCONT) it still holds the batches it had decided, and still
// believes it owns the SKU until it hears otherwise; it commits them, and
// every such commit is refused by the fence (its own lease-lost view, or
// etcd's compare on the owner key's revision), so it never writes after the
// other instance took over. The requests behind those batches are then sent
// to the new owner and answered: no key gets two orders, no 201 is lost,
// and the ledger is exact.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { getSku, listAllOrders } from '../support/api-helpers.ts';
import { clusterStatus, instancesWithSku, metricValue, useEtcdCluster } from '../support/cluster.ts';
import { call, NetworkFailure, runWorkers, sleep } from '../support/load.ts';
import { etcdArgs, runCheck, type ServerProcess } from '../support/service.ts';

const leaseTtlS = 2;
/**
 * Workers buying through the owner, so it holds decided batches when it is
 * paused: more than one 128-op etcd commit carries (about 40 reservations),
 * so a decided batch is nearly always waiting behind the commit in flight.
 */
const workers = 96;
const ackedBeforePause = 200;
const ackedAfterResume = 100;
/** Answers may wait out the pause: longer than it lasts. */
const callTimeoutMs = 60_000;
const keyAttemptsMax = 50;
const retryPauseMs = 100;
const phaseWaitMsMax = 60_000;
/** How long the paused owner stays paused after the other instance holds the SKU. */
const pausedAfterTakeoverMs = 1_000;

const prefix = `paused-${process.pid}/`;
const fixture = useEtcdCluster('hotstock-paused-owner', 1);

/** The fence's refusals on an instance: by its own view, and by etcd's compare. */
async function fenceRefusals(server: ServerProcess): Promise<{ local: number; etcd: number }> {
  const series = (check: string) => `hotstock_cluster_fence_refusals_total{check="${check}"}`;
  return { local: await metricValue(server, series('local')), etcd: await metricValue(server, series('etcd')) };
}

describe('a paused owner resumes after another instance took its SKU', () => {
  it('its commits are refused by the fence, and its requests are answered by the new owner', async () => {
    const sku = `paused-${process.pid}`;
    const extra = ['--cluster-lease-ttl-s', String(leaseTtlS)];
    const { servers, owner, others } = await instancesWithSku(fixture, {
      count: 2,
      prefix,
      sku,
      stock: 1_000_000,
      extra,
    });
    const [other] = others as [ServerProcess];
    const refusedBefore = await fenceRefusals(owner);

    const acked = new Map<string, string>();
    const ids = new Map<string, Set<string>>();
    let stopping = false;
    let sequence = 0;
    // Each key goes to the owner first (it may wait out the pause); a 503 or no answer is retried on the other.
    const load = runWorkers(workers, async (worker) => {
      while (!stopping) {
        const key = `paused-${worker}-${sequence++}`;
        for (let attempt = 0; !acked.has(key); attempt++) {
          assert.ok(attempt < keyAttemptsMax, `key ${key} got no 201 in ${keyAttemptsMax} attempts`);
          const server = attempt === 0 ? owner : other;
          try {
            const answer = await call<OrderView>(server.url, 'POST', '/v1/orders', {
              body: { sku, qty: 1, userId: key },
              idempotencyKey: key,
              timeoutMs: callTimeoutMs,
            });
            if (answer.status === 201) {
              acked.set(key, answer.body.id);
              ids.set(key, (ids.get(key) ?? new Set()).add(answer.body.id));
              continue;
            }
            assert.equal(answer.status, 503, `a wrong answer: ${answer.status} ${JSON.stringify(answer.body)}`);
          } catch (error) {
            if (!(error instanceof NetworkFailure)) throw error;
          }
          await sleep(retryPauseMs);
        }
      }
    });
    const waitForAcks = async (count: number, what: string) => {
      const target = acked.size + count;
      const deadline = Date.now() + phaseWaitMsMax;
      while (acked.size < target) {
        assert.ok(Date.now() < deadline, `${what}: only ${acked.size}/${target} orders`);
        await sleep(20);
      }
    };
    try {
      await waitForAcks(ackedBeforePause, 'before the pause');
      owner.child.kill('SIGSTOP');
      const deadline = Date.now() + phaseWaitMsMax;
      while ((await clusterStatus(other)).shardsServing < 64) {
        assert.ok(Date.now() < deadline, 'the other instance never took the shards over');
        await sleep(100);
      }
      await sleep(pausedAfterTakeoverMs);
      owner.child.kill('SIGCONT');
      await waitForAcks(ackedAfterResume, 'after the resume');
    } finally {
      stopping = true;
      owner.child.kill('SIGCONT');
      await load;
    }

    const refused = await fenceRefusals(owner);
    const byCheck = { local: refused.local - refusedBefore.local, etcd: refused.etcd - refusedBefore.etcd };
    console.log(`fence refusals on the resumed owner: ${JSON.stringify(byCheck)}; orders: ${acked.size}`);
    assert.ok(byCheck.local + byCheck.etcd > 0, 'the resumed owner tried to commit and the fence refused it');
    for (const [key, got] of ids) assert.equal(got.size, 1, `key ${key} got ${got.size} different orders`);
    const listed = await listAllOrders(other.url, { sku });
    assert.deepEqual(listed.map((order) => order.id).sort(), [...new Set(acked.values())].sort());
    assert.equal((await getSku(other.url, sku)).reserved, acked.size);

    for (const server of servers) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    const check = await runCheck(fixture.dataDir, etcdArgs(fixture.etcd.endpoints, prefix));
    console.log(`hotstock check --store etcd: ${check.stdout.trim()}`);
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
  });
});
