// The etcd store: the shared conformance suite against a real etcd, plus what
// only a remote, shared, compacting backend adds: namespaces, a change feed
// that survives a lost stream, compaction gaps, and etcd's transaction limits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdMaxTxnOpsDefault } from '../../src/constants.ts';
import { type ChangeFeedGap, type CommittedChange, prefixEnd, type Write } from '../../src/store/contract.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { storeConformanceSuite } from '../conformance/store-conformance.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';

let cluster: EtcdCluster;
let namespaceSequence = 0;

function freshPrefix(): string {
  namespaceSequence++;
  return `test-${process.pid}-${namespaceSequence}/`;
}

function openStore(prefix: string): EtcdStore {
  return new EtcdStore({
    client: createEtcdClient({ endpoints: cluster.endpoints }),
    ownsClient: true,
    prefix,
    maxTxnOps: etcdMaxTxnOpsDefault,
  });
}

before(async () => {
  cluster = await startEtcdCluster();
});

after(async () => {
  await cluster?.stop();
});

storeConformanceSuite('etcd', async () => {
  const prefix = freshPrefix();
  return {
    store: openStore(prefix),
    reopen: async () => openStore(prefix),
    cleanup: async () => {},
  };
});

const put = (key: string, value: unknown): Write => ({ type: 'put', key, value });
/** How long a test waits for the feed to show a commit or a gap. */
const feedWaitMsMax = 20_000;

async function waitUntil(what: string, done: () => boolean): Promise<void> {
  const deadline = Date.now() + feedWaitMsMax;
  while (!done()) {
    assert.ok(Date.now() < deadline, `${what} did not happen within ${feedWaitMsMax} ms`);
    await sleep(20);
  }
}

describe('EtcdStore on a real etcd', () => {
  it('keeps each namespace to itself: same keys under two prefixes never meet', async () => {
    const a = openStore(freshPrefix());
    const b = openStore(freshPrefix());
    try {
      await a.commit([], [put('shared', 'a')]);
      await b.commit([], [put('shared', 'b'), put('only-b', 1)]);
      assert.equal((await a.get('shared'))?.value, 'a');
      assert.deepEqual(
        (await a.range({ start: '', end: prefixEnd(''), limit: 10 })).map((entry) => entry.key),
        ['shared'],
      );
      assert.equal((await b.get('shared'))?.value, 'b');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('limits: compares count apart from writes; etcd refuses more than max-txn-ops writes; oversized commits are refused whole', async () => {
    const store = openStore(freshPrefix());
    const raw = createEtcdClient({ endpoints: cluster.endpoints });
    try {
      assert.equal(store.limits.commitChecksMax, etcdMaxTxnOpsDefault);
      assert.equal(store.limits.commitWritesMax, etcdMaxTxnOpsDefault);
      // etcd counts compares and success ops separately, so a full commit of checks plus writes fits.
      const seeded = await store.commit(
        [],
        Array.from({ length: 64 }, (_, i) => put(`c/${i}`, i)),
      );
      assert.ok(seeded.ok);
      const mixed = await store.commit(
        Array.from({ length: 64 }, (_, i) => ({ key: `c/${i}`, version: seeded.revision })),
        Array.from({ length: 64 }, (_, i) => put(`w/${i}`, i)),
      );
      assert.ok(mixed.ok, 'a commit of 64 checks and 64 writes fits one etcd transaction');
      // The limit is etcd's own: one write past it is refused by the server.
      await assert.rejects(
        raw.kv.txn({
          compare: [],
          success: Array.from({ length: etcdMaxTxnOpsDefault + 1 }, (_, i) => ({
            request_put: { key: Buffer.from(`raw-over/${i}`), value: Buffer.from('x') },
          })),
          failure: [],
        }),
        /too many operations/,
      );
      // A commit near commitBytesMax is accepted; one over etcd's request limit is refused before it is sent.
      const nearLimit = 'x'.repeat(store.limits.commitBytesMax - 100);
      assert.ok((await store.commit([], [put('big/ok', nearLimit)])).ok);
      const half = 'y'.repeat(800 * 1024);
      await assert.rejects(store.commit([], [put('big/1', half), put('big/2', half)]));
      assert.equal(await store.get('big/1'), undefined, 'nothing of a refused commit is applied');
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('the change feed resumes after the etcd connection is lost, delivering what was committed meanwhile, once', async () => {
    const prefix = freshPrefix();
    const follower = openStore(prefix);
    const writer = openStore(prefix);
    try {
      const changes: CommittedChange[] = [];
      follower.subscribe('', (change) => changes.push(change));
      const first = await writer.commit([], [put('feed/1', 1)]);
      assert.ok(first.ok);
      await waitUntil('first delivery', () => changes.length === 1);
      await cluster.kill(0);
      await cluster.start(0);
      // These land while the follower's watch is still reconnecting (it backs off first).
      const revisions: number[] = [first.revision];
      for (let i = 2; i <= 4; i++) {
        const result = await writer.commit([], [put(`feed/${i}`, i)]);
        assert.ok(result.ok);
        revisions.push(result.revision);
      }
      await waitUntil('deliveries after reconnect', () => changes.length >= 4);
      await sleep(200);
      assert.deepEqual(
        changes.map((change) => change.revision),
        revisions,
        'every commit once, in order',
      );
      assert.deepEqual(changes.at(-1)!.writes, [put('feed/4', 4)]);
    } finally {
      await follower.close();
      await writer.close();
    }
  });

  it('a compacted revision is reported as a gap, and the feed goes on after it', async () => {
    const prefix = freshPrefix();
    const follower = openStore(prefix);
    const writer = openStore(prefix);
    const raw = createEtcdClient({ endpoints: cluster.endpoints });
    try {
      await follower.revision(); // the follower has now seen this revision; its feed starts after it
      let last = 0;
      for (let i = 0; i < 5; i++) {
        const result = await writer.commit([], [put('gap/k', i)]);
        assert.ok(result.ok);
        last = result.revision;
      }
      await raw.kv.compact({ revision: last, physical: true });
      const gaps: ChangeFeedGap[] = [];
      const changes: CommittedChange[] = [];
      follower.subscribe(
        '',
        (change) => changes.push(change),
        (gap) => gaps.push(gap),
      );
      await waitUntil('gap report', () => gaps.length === 1);
      assert.match(gaps[0]!.reason, /compacted/);
      assert.ok(gaps[0]!.resumedAfterRevision >= last);
      const after = await writer.commit([], [put('gap/k', 'after')]);
      assert.ok(after.ok);
      await waitUntil('delivery after the gap', () => changes.some((change) => change.revision === after.revision));
      assert.ok(
        changes.every((change) => change.revision > gaps[0]!.resumedAfterRevision),
        'nothing from inside the gap',
      );
    } finally {
      raw.close();
      await follower.close();
      await writer.close();
    }
  });
});
