// An instance whose change feed lost commits (etcd compacted them before the
// watch could deliver them) re-warms every SKU from the store, so its warm
// state does not stay behind what another instance committed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdMaxTxnOpsDefault } from '../../src/constants.ts';
import { Engine, type EngineObserver } from '../../src/engine/engine.ts';
import type { ChangeFeedGap } from '../../src/store/contract.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';

/** How long the gap and the re-warm may take to show. */
const rewarmWaitMsMax = 20_000;

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcdCluster();
});
after(async () => {
  await cluster?.stop();
});

function openStore(prefix: string): EtcdStore {
  return new EtcdStore({
    client: createEtcdClient({ endpoints: cluster.endpoints }),
    ownsClient: true,
    prefix,
    maxTxnOps: etcdMaxTxnOpsDefault,
  });
}

function engineOn(store: EtcdStore, gaps: ChangeFeedGap[] = []): Engine {
  const observer: EngineObserver = {
    batchCommitted() {},
    operationDecided() {},
    storeFailed() {},
    feedGapped: (gap, error) => {
      assert.equal(error, undefined, 're-warm failed');
      gaps.push(gap);
    },
  };
  return new Engine(store, { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000 }, observer);
}

describe('change-feed gap', () => {
  test('a compacted feed re-warms the engine to what the other instance committed', async () => {
    const prefix = `gap-${process.pid}/`;
    const storeA = openStore(prefix);
    const storeB = openStore(prefix);
    const raw = createEtcdClient({ endpoints: cluster.endpoints });
    try {
      const other = engineOn(storeB);
      const created = await other.upsert(
        'g',
        { entry: { product: 'p', size: 'M', color: 'red', priceCents: 100, maxPerUser: null }, initialStock: 10 },
        {},
      );
      assert.ok(created.ok);
      const gaps: ChangeFeedGap[] = [];
      const engine = engineOn(storeA, gaps);
      assert.equal(await engine.warm(), 1);
      assert.equal(engine.getSku('g')?.record.reserved, 0);

      for (let i = 0; i < 3; i++) assert.ok((await other.reserve('g', { qty: 1, userId: `u${i}` })).ok);
      await raw.kv.compact({ revision: await storeB.revision(), physical: true });

      const stop = engine.followStore();
      const deadline = Date.now() + rewarmWaitMsMax;
      while (gaps.length === 0 || engine.getSku('g')?.record.reserved !== 3) {
        assert.ok(Date.now() < deadline, `no re-warm within ${rewarmWaitMsMax} ms (gaps: ${gaps.length})`);
        await sleep(20);
      }
      const state = engine.getSku('g')?.record;
      assert.equal(state && state.total - state.reserved - state.sold, 7);
      stop();
    } finally {
      raw.close();
      await storeA.close();
      await storeB.close();
    }
  });
});
