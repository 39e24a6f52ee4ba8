// Shard ownership and the fence on a real etcd, in process. A commit of a
// SKU record carries its shard's fence: it applies while this instance's
// owner key stands; once another holder has put its own key (this instance
// still holding its old token, as a paused one would), etcd's compare
// refuses it and nothing is applied; after that, and for a shard never held,
// the commit is refused before it is sent. Commits without SKU records are
// not fenced. A conflict that names the owner key only because the store
// could not tell which checks failed keeps the shard. A hand-over lets the old owner's batches land first: the new
// owner cannot take a shard until the old one has drained it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type FenceCheck, FencedStore } from '../../src/cluster/fenced-store.ts';
import { Ownership } from '../../src/cluster/ownership.ts';
import { ClusterRegistry } from '../../src/cluster/registry.ts';
import { shardOf } from '../../src/cluster/shards.ts';
import { clusterShardsCount, etcdMaxTxnOpsDefault } from '../../src/constants.ts';
import { keys } from '../../src/layout.ts';
import { createLogger } from '../../src/logger.ts';
import { type CommitResult, FenceRefusal, type VersionCheck, type Write } from '../../src/store/contract.ts';
import { DelegatingStore } from '../../src/store/delegating-store.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { sleep } from '../support/load.ts';

const leaseTtlS = 5;
/** How long ownership may take to settle on a shared machine. */
const settleWaitMsMax = 20_000;

let cluster: EtcdCluster;
const opened: { store: EtcdStore; ownership: Ownership }[] = [];

before(async () => {
  cluster = await startEtcdCluster();
});

after(async () => {
  for (const { store, ownership } of opened) {
    ownership.close();
    await store.close();
  }
  await cluster?.stop();
});

/**
 * An instance's store and ownership on `prefix`; `drain` stands for its
 * engine's writers, `catchUp` for its engine catching up with a revision.
 */
function instance(
  prefix: string,
  drain: () => Promise<void> = async () => {},
  catchUp: (revision: number) => Promise<void> = async () => {},
) {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  const store = new EtcdStore({ client, ownsClient: true, prefix, maxTxnOps: etcdMaxTxnOpsDefault });
  const ownership = new Ownership({
    memberId: randomUUID(),
    registry: new ClusterRegistry(client, prefix, leaseTtlS),
    feed: store,
    drain,
    catchUp,
    log: createLogger('silent'),
    observer: { handedOver() {} },
  });
  opened.push({ store, ownership });
  return { store, ownership };
}

async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + settleWaitMsMax;
  while (!done()) {
    assert.ok(Date.now() < deadline, what);
    await sleep(20);
  }
}

const record = (sku: string, total: number) => ({ sku, total });

/** Names every checked key of a failed commit, as the etcd store does when its read after the failed compare fails. */
class NamesEveryCheckedKey extends DelegatingStore {
  override async commit(checks: readonly VersionCheck[], writes: readonly Write[]): Promise<CommitResult> {
    const result = await this.inner.commit(checks, writes);
    return result.ok ? result : { ok: false, conflictKeys: checks.map((check) => check.key) };
  }
}

describe('the fence', () => {
  test('a holder whose owner key another put meanwhile is refused by etcd, then before sending', async () => {
    const prefix = `fence-${process.pid}/`;
    const { store, ownership } = instance(prefix);
    await ownership.start();
    await ownership.join('http://127.0.0.1:9');
    await until('the only member serves every shard', () => ownership.figures().shardsServing === clusterShardsCount);
    const refusals: FenceCheck[] = [];
    const fenced = new FencedStore(store, ownership, (check) => refusals.push(check));
    const sku = 'fenced-sku';
    const shard = shardOf(sku);

    const first = await fenced.commit([], [{ type: 'put', key: keys.sku(sku), value: record(sku, 1) }]);
    assert.ok(first.ok, 'the owner commits');
    const unfenced = await fenced.commit([], [{ type: 'put', key: keys.sweep(sku), value: 0 }]);
    assert.ok(unfenced.ok, 'a commit without SKU records needs no owner');

    // Another holder: the owner key deleted and put again under another member, as after a lapsed lease.
    const raw = createEtcdClient({ endpoints: cluster.endpoints });
    try {
      const ownerKey = `${prefix}${keys.shardOwner(shard)}`;
      await raw.delete().key(ownerKey);
      await raw.put(ownerKey).value(JSON.stringify({ owner: randomUUID() }));
    } finally {
      raw.close();
    }
    const staleToken = ownership.tokenOf(shard);
    assert.ok(staleToken !== undefined, 'the old holder still holds its token (it has heard nothing)');

    const stale = fenced.commit([], [{ type: 'put', key: keys.sku(sku), value: record(sku, 2) }]);
    await assert.rejects(stale, FenceRefusal);
    assert.deepEqual(refusals, ['etcd'], "etcd's compare on the owner key refused it");
    assert.equal((await store.get<{ total: number }>(keys.sku(sku)))?.value.total, 1, 'nothing was applied');
    assert.equal(ownership.tokenOf(shard), undefined, 'the refusal let the stale token go');

    const after = fenced.commit([], [{ type: 'put', key: keys.sku(sku), value: record(sku, 3) }]);
    await assert.rejects(after, FenceRefusal);
    assert.deepEqual(refusals, ['etcd', 'local'], 'refused before it is sent');
    assert.equal((await store.get<{ total: number }>(keys.sku(sku)))?.value.total, 1);
  });

  test('a conflict naming every checked key keeps the shard while its owner key is still this holder', async () => {
    const prefix = `fence-unsure-${process.pid}/`;
    const { store, ownership } = instance(prefix);
    await ownership.start();
    await ownership.join('http://127.0.0.1:9');
    await until('the only member serves every shard', () => ownership.figures().shardsServing === clusterShardsCount);
    const refusals: FenceCheck[] = [];
    const fenced = new FencedStore(new NamesEveryCheckedKey(store), ownership, (check) => refusals.push(check));
    const sku = 'unsure-sku';
    const put = (total: number) => [{ type: 'put' as const, key: keys.sku(sku), value: record(sku, total) }];
    const first = await fenced.commit([], put(1));
    assert.ok(first.ok);

    // A real conflict on the SKU record (checked at a version it no longer has), reported with every checked key.
    const conflict = await fenced.commit([{ key: keys.sku(sku), version: first.revision - 1 }], put(2));
    assert.deepEqual(conflict, { ok: false, conflictKeys: [keys.sku(sku)] }, 'a conflict, the owner key taken out');
    assert.deepEqual(refusals, [], 'not a fence refusal');
    assert.ok(ownership.tokenOf(shardOf(sku)) !== undefined, 'the shard is still held');
    const retried = await fenced.commit([{ key: keys.sku(sku), version: first.revision }], put(3));
    assert.ok(retried.ok, 'the retry after reloading commits');
  });

  test("a hand-over waits for the old owner's batches to land before the new owner takes the shard", async () => {
    const prefix = `hand-over-${process.pid}/`;
    let drained: () => void = () => {};
    let draining = false;
    const old = instance(prefix, () => {
      draining = true;
      return new Promise((resolve) => {
        drained = resolve;
      });
    });
    await old.ownership.start();
    await old.ownership.join('http://127.0.0.1:9');
    await until(
      'the first member serves every shard',
      () => old.ownership.figures().shardsServing === clusterShardsCount,
    );

    const next = instance(prefix);
    await next.ownership.start();
    await next.ownership.join('http://127.0.0.1:10');
    await until('the old owner starts handing over', () => draining);
    await sleep(500);
    assert.equal(next.ownership.figures().shardsServing, 0, 'nothing is taken while the old owner drains');
    drained();
    const half = clusterShardsCount / 2;
    await until('the shards are split', () => next.ownership.figures().shardsServing === half);
    assert.equal(old.ownership.figures().shardsServing, half);
  });

  test('a shard taken serves once the warm state caught up with its take; a failed catch-up is tried again', async () => {
    const prefix = `catch-up-${process.pid}/`;
    const asked: number[] = [];
    let caughtUp: () => void = () => {};
    const { ownership } = instance(
      prefix,
      async () => {},
      (revision) => {
        asked.push(revision);
        if (asked.length === 1) return Promise.reject(new Error('etcd did not answer'));
        return new Promise((resolve) => {
          caughtUp = resolve;
        });
      },
    );
    await ownership.start();
    const joined = ownership.join('http://127.0.0.1:9');
    await until('the catch-up is tried again after it failed', () => asked.length === 2);
    const tokens = Array.from({ length: clusterShardsCount }, (_, shard) => ownership.tokenOf(shard));
    assert.ok(
      tokens.every((token) => token !== undefined),
      'every shard is taken',
    );
    const latestTake = Math.max(...(tokens as number[]));
    assert.deepEqual(asked, [latestTake, latestTake], 'asked to catch up with the latest take');
    await sleep(300);
    assert.equal(ownership.figures().shardsServing, 0, 'none serves before the warm state caught up');
    caughtUp();
    await joined;
    await until('every shard serves', () => ownership.figures().shardsServing === clusterShardsCount);
  });
});
