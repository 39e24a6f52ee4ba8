// Start-up checks against real etcd servers: a "pseudo cluster" (independent
// single-member etcds listed as one cluster) and a wrong member count are
// refused with a clear message; an etcd out of space (NOSPACE alarm) is a
// clear 503 `backend_no_space` while running and a clear start failure.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createEtcdClient } from '../../src/store/etcd-store.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { call } from '../support/load.ts';
import {
  createSku,
  etcdServeArgs,
  killIfRunning,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

/** A small backend quota, so filling it takes a few megabytes. */
const quotaBackendBytes = 4 * 1024 * 1024;
const fillValueBytes = 256 * 1024;
/** Puts of fillValueBytes before the test gives up on reaching the quota. */
const fillPutsMax = 200;

const clusters: EtcdCluster[] = [];
const servers: ServerProcess[] = [];
const data = tempDataDir('hotstock-etcd-startup');

after(async () => {
  for (const server of servers) await killIfRunning(server);
  for (const cluster of clusters) await cluster.stop();
  data.remove();
});

async function cluster(options: Parameters<typeof startEtcdCluster>[0] = {}): Promise<EtcdCluster> {
  const started = await startEtcdCluster(options);
  clusters.push(started);
  return started;
}

/** `hotstock serve` must exit without listening; returns what it printed. */
async function refusedStart(args: string[]): Promise<string> {
  try {
    const server = await spawnServer(data.dir, args);
    servers.push(server);
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail('hotstock started on a cluster it should have refused');
}

describe('etcd start-up checks', () => {
  it('refuses a pseudo cluster: three independent single-member etcds given as one cluster', async () => {
    const singles = [await cluster(), await cluster(), await cluster()];
    const endpoints = singles.map((single) => single.endpoints[0]!);
    const output = await refusedStart(etcdServeArgs(endpoints, 'pseudo/'));
    console.log(`pseudo cluster refused: ${/error: cannot start: (.*)/.exec(output)?.[1]}`);
    assert.match(output, /exited \(1\)/);
    assert.match(output, /refusing to start on this etcd cluster/);
    assert.match(output, /belong to 3 different clusters/);
    assert.match(output, /share names: member-0/);
  });

  it('refuses a cluster with another member count than --etcd-expect-members', async () => {
    const single = clusters[0]!;
    const output = await refusedStart(etcdServeArgs(single.endpoints, 'count/', ['--etcd-expect-members', '3']));
    assert.match(output, /--etcd-expect-members 3, but the cluster has 1 member\(s\): member-0/);
  });

  it('refuses a 3-member cluster of which only one member answers', async () => {
    const three = await cluster({ size: 3 });
    const leader = await three.leaderIndex();
    for (let i = 0; i < 3; i++) if (i !== leader) await three.kill(i);
    const output = await refusedStart(etcdServeArgs(three.endpoints, 'quorum/', ['--etcd-expect-members', '3']));
    console.log(`lost quorum refused: ${/error: cannot start: (.*)/.exec(output)?.[1]}`);
    assert.match(output, /only 1 of the 3 etcd members answer/);
  });

  it('NOSPACE: orders get 503 backend_no_space (not a hang, not an open breaker); a new start is refused', async () => {
    const small = await cluster({ quotaBackendBytes });
    const server = await spawnServer(data.dir, etcdServeArgs(small.endpoints, 'nospace/'));
    servers.push(server);
    const sku = 'nospace-sku';
    await createSku(server.url, sku, { initialStock: 100 });
    const raw = createEtcdClient({ endpoints: small.endpoints });
    try {
      const value = Buffer.alloc(fillValueBytes, 'x');
      let full = false;
      for (let i = 0; i < fillPutsMax && !full; i++) {
        try {
          await raw.kv.put({ key: Buffer.from(`filler/${i}`), value });
        } catch (error) {
          assert.match((error as Error).message, /database space exceeded/);
          full = true;
        }
      }
      assert.ok(full, `etcd never reached its ${quotaBackendBytes}-byte quota`);
    } finally {
      raw.close();
    }
    for (let i = 0; i < 3; i++) {
      const answer = await call(server.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: 'u1' },
        idempotencyKey: `nospace-${i}`,
      });
      assert.equal(answer.status, 503);
      assert.equal((answer.body as { code: string }).code, 'backend_no_space');
      console.log(`order on a full etcd: ${JSON.stringify(answer.body)}`);
    }
    const metrics = await call<string>(server.url, 'GET', '/metrics');
    assert.match(metrics.body, /hotstock_backend_breaker_state\{state="closed"\} 1/);
    const output = await refusedStart(etcdServeArgs(small.endpoints, 'nospace/'));
    assert.match(output, /NOSPACE alarm/);
  });
});
