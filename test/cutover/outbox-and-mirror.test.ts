// The outbox and the mirror worker on real stores (LMDB and etcd), below the
// service: what a commit records, how numbering goes on across a reopen,
// an entry too big for one etcd transaction applied in parts with its
// progress recorded, a second worker (a restart) applying only what the
// first had not, applied entries deleted from the outbox, and a mirror that
// already holds data refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdMaxTxnOpsDefault } from '../../src/constants.ts';
import { MirrorWorker } from '../../src/cutover/mirror-worker.ts';
import { OutboxStore } from '../../src/cutover/outbox-store.ts';
import { Routing, RoutingError } from '../../src/cutover/routing.ts';
import { keys, type MirrorResume, type OutboxEntry, type OutboxMeta } from '../../src/layout.ts';
import { createLogger } from '../../src/logger.ts';
import { BackendBreaker } from '../../src/store/backend-breaker.ts';
import type { Write } from '../../src/store/contract.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { tempDataDir } from '../support/service.ts';

const waitMsMax = 20_000;
const log = createLogger('silent');
let cluster: EtcdCluster;
let prefixes = 0;
const dirs: (() => void)[] = [];

before(async () => {
  cluster = await startEtcdCluster();
});

after(async () => {
  for (const remove of dirs) remove();
  await cluster?.stop();
});

function lmdb(): { store: LmdbStore; dir: string } {
  const { dir, remove } = tempDataDir('hotstock-outbox');
  dirs.push(remove);
  return { store: new LmdbStore({ dataDir: dir }), dir };
}

function etcd(prefix = `outbox-test-${process.pid}-${++prefixes}/`): EtcdStore {
  return new EtcdStore({
    client: createEtcdClient({ endpoints: cluster.endpoints }),
    ownsClient: true,
    prefix,
    maxTxnOps: etcdMaxTxnOpsDefault,
  });
}

const put = (key: string, value: unknown): Write => ({ type: 'put', key, value });

function worker(outbox: OutboxStore, target: EtcdStore): MirrorWorker {
  const breaker = new BackendBreaker({ consecutiveFailures: 5, failureRate: 0.5, halfOpenAfterMs: 500 });
  return new MirrorWorker({ outbox, source: outbox.inner, target, breaker, seed: undefined, log });
}

async function applied(mirror: MirrorWorker, seq: number): Promise<void> {
  assert.ok(await mirror.whenCovered(seq, waitMsMax), `the mirror applied through ${seq} within ${waitMsMax} ms`);
}

describe('the outbox', () => {
  it('records the mirrored writes of a commit in that commit, and nothing for store-local writes or failed checks', async () => {
    const { store } = lmdb();
    const outbox = await OutboxStore.open(store);
    const first = await outbox.commit([], [put('sku/a', { n: 1 }), put('sweep/a', 5)]);
    assert.ok(first.ok);
    const entry = await store.get<OutboxEntry>(keys.outboxEntry(1));
    assert.deepEqual(entry?.value.writes, [put('sku/a', { n: 1 })], 'only the mirrored write, and no sweep mark');
    assert.equal(entry?.version, first.revision, 'the entry is part of the same commit');
    await outbox.commit([], [put('sweep/b', 1)]);
    assert.equal(outbox.issuedSeq, 1, 'a commit of store-local keys alone records nothing');
    const conflict = await outbox.commit([{ key: 'sku/a', version: 0 }], [put('sku/a', { n: 2 })]);
    assert.equal(conflict.ok, false);
    assert.equal(await store.get(keys.outboxEntry(2)), undefined, 'a commit that did not apply left no entry');
    await outbox.whenSettled(2);
    assert.equal(outbox.settledThrough, 2);
    await store.close();
  });

  it('numbers on after a reopen, past gaps and past entries already deleted', async () => {
    const { store, dir } = lmdb();
    const outbox = await OutboxStore.open(store);
    for (let i = 0; i < 37; i++) await outbox.commit([], [put(`order/${i}`, i)]);
    // Entries 1..20 applied and deleted, as the worker does, with the outbox identity record.
    const trimmed: Write[] = Array.from({ length: 20 }, (_, i) => ({ type: 'delete', key: keys.outboxEntry(i + 1) }));
    const meta: OutboxMeta = { stream: outbox.stream, trimmedThrough: 20 };
    await store.commit([], [...trimmed, put(keys.outboxMeta, meta), { type: 'delete', key: keys.outboxEntry(30) }]);
    await store.close();
    const reopened = await OutboxStore.open(new LmdbStore({ dataDir: dir }));
    assert.equal(reopened.stream, outbox.stream);
    assert.equal(reopened.issuedSeq, 37);
    assert.equal(reopened.entries, 17);
    await reopened.inner.close();
  });
});

describe('the mirror worker, LMDB to etcd', () => {
  it('applies an entry too big for one etcd transaction in parts, recording how far each part got', async () => {
    const { store } = lmdb();
    const outbox = await OutboxStore.open(store);
    const target = etcd();
    const writes = Array.from({ length: 1_000 }, (_, i) => put(`order/big-${String(i).padStart(4, '0')}`, { i }));
    await outbox.commit([], writes);
    const resumes: MirrorResume[] = [];
    const watcher = await createEtcdClient({ endpoints: cluster.endpoints })
      .watch()
      .key(`${target.prefix}${keys.mirrorResume('lmdb')}`)
      .create();
    watcher.on('put', (kv) => resumes.push(JSON.parse(kv.value.toString()) as MirrorResume));
    const mirror = worker(outbox, target);
    mirror.start();
    await applied(mirror, 1);
    await mirror.stop();
    const copies = await target.range({ start: 'order/', end: 'order0', limit: 2_000 });
    assert.equal(copies.length, 1_000);
    const deadline = Date.now() + waitMsMax;
    while (resumes.at(-1)?.appliedThrough !== 1) {
      assert.ok(Date.now() < deadline, 'the watch shows the last resume point');
      await sleep(20);
    }
    await watcher.cancel();
    const parts = resumes.filter((resume) => resume.partial !== null).map((resume) => resume.partial!.offset);
    assert.ok(parts.length >= 1_000 / etcdMaxTxnOpsDefault - 1, `applied in ${parts.length + 1} parts`);
    assert.deepEqual(
      parts,
      [...parts].sort((a, b) => a - b),
      'each part starts where the one before ended',
    );
    assert.equal(await store.get(keys.outboxEntry(1)), undefined, 'the applied entry is deleted from the outbox');
    await Promise.all([store.close(), target.close()]);
  });

  it('after a restart, applies only what the mirror does not hold yet, in order', async () => {
    const { store, dir } = lmdb();
    let outbox = await OutboxStore.open(store);
    const target = etcd();
    for (let i = 0; i < 10; i++) await outbox.commit([], [put('sku/x', { step: i }), put(`order/x-${i}`, i)]);
    let mirror = worker(outbox, target);
    mirror.start();
    await applied(mirror, 10);
    const firstRun = mirror.applied;
    await mirror.stop();
    await store.close();
    // The restart: a new outbox on the same directory, a new worker, and more commits.
    outbox = await OutboxStore.open(new LmdbStore({ dataDir: dir }));
    for (let i = 10; i < 15; i++)
      await outbox.commit([], [put('sku/x', { step: i }), { type: 'delete', key: `order/x-${i - 10}` }]);
    mirror = worker(outbox, target);
    mirror.start();
    await applied(mirror, 15);
    await mirror.stop();
    assert.equal(firstRun, 10);
    assert.equal(mirror.applied, 5, 'the second run applied the five new entries and nothing else');
    assert.deepEqual((await target.get('sku/x'))?.value, { step: 14 });
    const left = await target.range({ start: 'order/', end: 'order0', limit: 100 });
    assert.deepEqual(
      left.map((entry) => entry.key),
      Array.from({ length: 5 }, (_, i) => `order/x-${i + 5}`),
    );
    await Promise.all([outbox.inner.close(), target.close()]);
  });

  it('a wait for what the mirror holds already ends once a restarted worker has read its resume point', async () => {
    const { store, dir } = lmdb();
    const outbox = await OutboxStore.open(store);
    const target = etcd();
    for (let i = 0; i < 3; i++) await outbox.commit([], [put(`order/w-${i}`, i)]);
    const first = worker(outbox, target);
    first.start();
    await applied(first, 3);
    await first.stop();
    await store.close();
    // Nothing is committed after the restart: no entry applied will wake the wait.
    const reopened = await OutboxStore.open(new LmdbStore({ dataDir: dir }));
    const again = worker(reopened, target);
    const waiting = again.whenCovered(3, waitMsMax);
    again.start();
    assert.equal(await waiting, true);
    await again.stop();
    await Promise.all([reopened.inner.close(), target.close()]);
  });
});

describe('attaching a mirror', () => {
  it('refuses another store paired with a mirror that serves one already (a second instance, another data dir)', async () => {
    const first = lmdb();
    const second = lmdb();
    const shared = etcd();
    const mirror = await OutboxStore.open(shared);
    await Routing.load({ home: await OutboxStore.open(first.store), mirror, etcd: shared });
    const again = await Routing.load({ home: await OutboxStore.open(first.store), mirror, etcd: shared });
    assert.equal(again.defaultStore, 'lmdb', 'the store it was made with is taken again');
    await assert.rejects(
      Routing.load({ home: await OutboxStore.open(second.store), mirror, etcd: shared }),
      (error: unknown) => {
        assert.ok(error instanceof RoutingError);
        assert.match(error.message, /pairs another lmdb store with this one/);
        return true;
      },
    );
    await Promise.all([first.store.close(), second.store.close(), shared.close()]);
  });

  it('refuses a mirror that already holds data of its own', async () => {
    const { store } = lmdb();
    const routingStore = etcd();
    await routingStore.commit([], [put('sku/stranger', { sku: 'stranger' })]);
    const stores = {
      home: await OutboxStore.open(store),
      mirror: await OutboxStore.open(routingStore),
      etcd: routingStore,
    };
    await assert.rejects(Routing.load(stores), (error: unknown) => {
      assert.ok(error instanceof RoutingError);
      assert.match(error.message, /already holds data .*sku\/stranger/);
      return true;
    });
    await Promise.all([store.close(), routingStore.close()]);
  });
});
