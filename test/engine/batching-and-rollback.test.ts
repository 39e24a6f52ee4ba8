// The engine's write path against a real LMDB store: batches commit once,
// a failed commit rolls the warm state back and fails the batch, a version
// conflict (another engine on the same store, as another instance would be)
// reloads the SKU and re-decides, and the op limit a store declares splits
// batches instead of being exceeded.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { checkLedger } from '../../src/check/ledger-check.ts';
import { shedQueueWaitMsDefault, writeBytesMax } from '../../src/constants.ts';
import { Engine, type EngineObserver } from '../../src/engine/engine.ts';
import type { OperationResult } from '../../src/engine/operations.ts';
import { keys, operationCosts } from '../../src/layout.ts';
import {
  type CommitResult,
  commitBytes,
  type Entry,
  type RangeQuery,
  type Store,
  type StoreLimits,
  type VersionCheck,
  type Write,
} from '../../src/store/contract.ts';
import { CountingStore } from '../../src/store/counting-store.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { tempDataDir } from '../support/service.ts';

const dirs: (() => void)[] = [];
after(() => {
  for (const remove of dirs) remove();
});

function openStore(): LmdbStore {
  const { dir, remove } = tempDataDir('engine');
  dirs.push(remove);
  return new LmdbStore({ dataDir: dir });
}

/** A real store whose next commits can be made to fail, with limits of the test's choosing. */
class FaultyStore extends CountingStore {
  failNextCommits = 0;
  /** While set, commits wait for it: a store that has stalled (a slow disk). */
  stall: Promise<void> | undefined;
  /** Reads and commits take this long, as over a network (etcd). */
  latencyMs = 0;
  private readonly testLimits: StoreLimits;
  constructor(inner: LmdbStore, limits: Partial<StoreLimits> = {}) {
    super(inner);
    this.testLimits = { ...inner.limits, ...limits };
  }
  override get limits(): StoreLimits {
    return this.testLimits;
  }
  override async getMany<V>(keys: readonly string[]): Promise<(Entry<V> | undefined)[]> {
    if (this.latencyMs > 0) await setTimeout(Math.random() * this.latencyMs);
    return super.getMany<V>(keys);
  }
  override async rangeMany<V>(queries: readonly RangeQuery[]): Promise<Entry<V>[][]> {
    if (this.latencyMs > 0) await setTimeout(Math.random() * this.latencyMs);
    return super.rangeMany<V>(queries);
  }
  // A plain promise: like etcd, this store says a commit's revision only when it lands.
  override async commit(checks: readonly VersionCheck[], writes: readonly Write[]): Promise<CommitResult> {
    if (this.latencyMs > 0) await setTimeout(Math.random() * this.latencyMs);
    assert.ok(checks.length <= this.limits.commitChecksMax, 'the engine exceeded commitChecksMax');
    assert.ok(writes.length <= this.limits.commitWritesMax, 'the engine exceeded commitWritesMax');
    assert.ok(commitBytes(writes) <= this.limits.commitBytesMax, 'the engine exceeded commitBytesMax');
    await this.stall;
    if (this.failNextCommits > 0) {
      this.failNextCommits--;
      this.commits++;
      throw new Error('injected: disk full');
    }
    return super.commit(checks, writes);
  }
}

const quietObserver: EngineObserver = {
  batchCommitted() {},
  operationDecided() {},
  storeFailed() {},
};

function engineOn(store: Store): Engine {
  return new Engine(store, { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000 }, quietObserver);
}

async function createSku(engine: Engine, sku: string, initialStock: number): Promise<void> {
  const result = await engine.upsert(
    sku,
    { entry: { product: 'p', size: 'M', color: 'red', priceCents: 100, maxPerUser: null }, initialStock },
    {},
  );
  assert.ok(result.ok, JSON.stringify(result));
}

function reservation(userId: string, qty = 1): { qty: number; userId: string } {
  return { qty, userId };
}

function count(results: OperationResult[], predicate: (result: OperationResult) => boolean): number {
  return results.filter(predicate).length;
}

describe('batching', () => {
  test('concurrent reservations on one SKU share commits and are all durable', async () => {
    const store = new FaultyStore(openStore());
    const engine = engineOn(store);
    await createSku(engine, 'hot', 1_000);
    const commitsBefore = store.commits;
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => engine.reserve('hot', reservation(`u${i}`))),
    );
    assert.equal(
      count(results, (r) => r.ok),
      300,
    );
    assert.ok(store.commits - commitsBefore < 300, `300 reservations took ${store.commits - commitsBefore} commits`);
    assert.equal(engine.getSku('hot')?.record.reserved, 300);
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });

  test('a store with a small op limit gets batches split to fit it, never exceeded', async () => {
    // 10 writes per commit: a few reservations each (FaultyStore asserts the bound on every commit).
    const store = new FaultyStore(openStore(), { commitWritesMax: 10, commitChecksMax: 10 });
    const engine = engineOn(store);
    await createSku(engine, 'small', 100);
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => engine.reserve('small', reservation(`u${i}`))),
    );
    assert.equal(
      count(results, (r) => r.ok),
      60,
    );
    assert.equal(engine.getSku('small')?.record.reserved, 60);
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });

  test('a store with a small byte limit gets batches split to fit it, never exceeded', async () => {
    // Room for 30 ops at the per-write bound: a few reservations per commit (FaultyStore asserts the bytes).
    const store = new FaultyStore(openStore(), { commitBytesMax: 30 * writeBytesMax });
    const engine = engineOn(store);
    await createSku(engine, 'narrow', 100);
    const commitsBefore = store.commits;
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => engine.reserve('narrow', reservation(`u${i}`))),
    );
    assert.equal(
      count(results, (r) => r.ok),
      60,
    );
    // At most 30 / (writes per reservation) reservations fit one commit.
    const perCommit = Math.floor(30 / operationCosts.reserve.writes);
    assert.ok(store.commits - commitsBefore >= 60 / perCommit, 'split into commits of a few each');
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });

  test('sold out is answered from memory without a commit', async () => {
    const store = new FaultyStore(openStore());
    const engine = engineOn(store);
    await createSku(engine, 'tiny', 1);
    assert.ok((await engine.reserve('tiny', reservation('first'))).ok);
    const commitsBefore = store.commits;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => engine.reserve('tiny', reservation(`late${i}`))),
    );
    assert.ok(results.every((r) => !r.ok && r.code === 'sold_out'));
    assert.equal(store.commits, commitsBefore, 'no commit for sold-out answers');
    await store.close();
  });
});

describe('pipeline: the next batch is decided while one commits', () => {
  test('a batch decided on top of a commit that fails is decided again, not answered', async () => {
    const store = new FaultyStore(openStore());
    const engine = engineOn(store);
    await createSku(engine, 'layered', 5);
    let release = () => {};
    store.stall = new Promise((resolve) => {
      release = resolve;
    });
    store.failNextCommits = 1;
    // The first batch takes 3 of 5 units and stalls in its commit; the next batch is decided on top
    // of it (2 units left, so one of these four gets insufficient_stock) and waits behind it.
    const first = engine.reserve('layered', reservation('first', 3));
    await setTimeout(10);
    const layered = Array.from({ length: 4 }, (_, i) => engine.reserve('layered', reservation(`next${i}`)));
    await setTimeout(10);
    store.stall = undefined;
    release();
    const failed = await first;
    assert.ok(!failed.ok && failed.code === 'store_unavailable', JSON.stringify(failed));
    // With the first batch gone, all four fit the 5 units: they were decided again on the real state.
    const results = await Promise.all(layered);
    assert.equal(
      count(results, (r) => r.ok),
      4,
      JSON.stringify(results),
    );
    assert.equal(engine.getSku('layered')?.record.reserved, 4);
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });

  test('on a store that says revisions only on landing, a batch read while the one ahead lands is issued against its revision', async () => {
    const store = new FaultyStore(openStore());
    store.latencyMs = 4;
    const engine = engineOn(store);
    await engine.upsert(
      'remote',
      { entry: { product: 'p', size: 'M', color: 'red', priceCents: 100, maxPerUser: 2 }, initialStock: 1_000 },
      {},
    );
    // Arriving a few at a time, so batches follow one another while earlier ones are still in flight.
    const pending: Promise<OperationResult>[] = [];
    for (let i = 0; i < 400; i++) {
      pending.push(engine.reserve('remote', reservation(`u${i % 150}`)));
      if (i % 5 === 4) await setTimeout(1);
    }
    const results = await Promise.all(pending);
    // Users 0-99 asked three times, 100-149 twice: the limit of two refuses exactly 100.
    assert.equal(
      count(results, (r) => r.ok),
      300,
      JSON.stringify(results.find((r) => !r.ok)),
    );
    assert.equal(
      count(results, (r) => !r.ok && r.code === 'per_user_limit_exceeded'),
      100,
    );
    assert.equal(engine.getSku('remote')?.record.reserved, 300);
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });

  test('replies wait for their own commit: versions are the revisions that made them durable', async () => {
    const store = new FaultyStore(openStore());
    const engine = engineOn(store);
    await createSku(engine, 'ordered', 1_000);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => engine.reserve('ordered', reservation(`u${i}`))),
    );
    const storeRevision = await store.revision();
    for (const result of results) {
      assert.ok(result.ok && result.resource.kind === 'order');
      const stored = await store.get(keys.order(result.resource.order.id));
      assert.equal(stored?.version, result.version, 'the answered version is the stored one');
      assert.ok(result.version <= storeRevision);
    }
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });
});

describe('defects', () => {
  test('an exception inside the writer answers every held request (none hangs) and the writer keeps working', async () => {
    const store = new FaultyStore(openStore());
    let throwOnCommit = false;
    const engine = new Engine(
      store,
      { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000 },
      {
        ...quietObserver,
        batchCommitted() {
          if (throwOnCommit) {
            throwOnCommit = false;
            throw new Error('injected: a listener failed');
          }
        },
      },
    );
    await createSku(engine, 'brittle', 100);
    throwOnCommit = true;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => engine.reserve('brittle', reservation(`u${i}`))),
    );
    const unclear = count(results, (r) => !r.ok && r.code === 'store_unavailable');
    assert.ok(unclear > 0, 'the batch whose handling failed was answered 503');
    assert.equal(count(results, (r) => r.ok) + unclear, 20, JSON.stringify(results));
    assert.equal(engine.queueDepth, 0, 'nothing is left counted as waiting');
    assert.ok((await engine.reserve('brittle', reservation('after'))).ok, 'the writer works again');
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });
});

describe('admission', () => {
  test('a SKU whose oldest waiting request has waited past the bound sheds new ones; the accepted still commit', async () => {
    const store = new FaultyStore(openStore());
    const engine = new Engine(
      store,
      { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000, shedQueueWaitMs: shedQueueWaitMsDefault },
      quietObserver,
    );
    await createSku(engine, 'stalled', 100);
    let release = () => {};
    store.stall = new Promise((resolve) => {
      release = resolve;
    });
    const inCommit = engine.reserve('stalled', reservation('a'));
    await setTimeout(10);
    const waiting = engine.reserve('stalled', reservation('b'));
    await setTimeout(shedQueueWaitMsDefault * 2);
    const shed = await engine.reserve('stalled', reservation('c'));
    assert.ok(!shed.ok && shed.code === 'overloaded', JSON.stringify(shed));
    store.stall = undefined;
    release();
    assert.ok((await inCommit).ok);
    assert.ok((await waiting).ok);
    assert.equal(engine.getSku('stalled')?.record.reserved, 2, 'the shed request changed nothing');
    assert.ok((await engine.reserve('stalled', reservation('d'))).ok, 'admits again once the queue drains');
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });
});

describe('rollback', () => {
  test('a failed commit fails its batch with store_unavailable and leaves the warm state untouched', async () => {
    const store = new FaultyStore(openStore());
    const engine = engineOn(store);
    await createSku(engine, 'fragile', 10);
    const before = engine.getSku('fragile');
    store.failNextCommits = 1;
    const failed = await engine.reserve('fragile', reservation('u0'));
    assert.ok(!failed.ok && failed.code === 'store_unavailable', JSON.stringify(failed));
    assert.deepEqual(engine.getSku('fragile'), before, 'warm state rolled back');
    assert.equal(
      (await store.get<{ reserved: number }>('sku/fragile'))!.value.reserved,
      0,
      'nothing reached the store',
    );

    // A failure in the middle of a stream fails exactly the batch it hit; the ledger stays exact.
    store.failNextCommits = 1;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => engine.reserve('fragile', reservation(`v${i}`))),
    );
    const accepted = count(results, (r) => r.ok);
    const unavailable = count(results, (r) => !r.ok && r.code === 'store_unavailable');
    assert.ok(unavailable > 0, 'the injected failure hit a batch');
    assert.equal(accepted + unavailable + count(results, (r) => !r.ok && r.code !== 'store_unavailable'), 20);
    assert.equal(engine.getSku('fragile')?.record.reserved, accepted, 'warm state counts exactly the acknowledged');
    assert.deepEqual((await checkLedger(store)).violations, []);
    await store.close();
  });
});

describe('conflicts between two engines on one store (two instances)', () => {
  test('racing engines sell exactly the stock: conflicts reload the SKU and re-decide', async () => {
    const store = openStore();
    const first = engineOn(store);
    await createSku(first, 'shared', 50);
    const second = engineOn(store);
    await second.warm();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? first : second).reserve('shared', reservation(`u${i}`))),
    );
    const sold = count(results, (r) => r.ok);
    const unavailable = count(results, (r) => !r.ok && r.code === 'store_unavailable');
    const soldOut = count(results, (r) => !r.ok && (r.code === 'sold_out' || r.code === 'insufficient_stock'));
    assert.equal(sold + unavailable + soldOut, 200, JSON.stringify(results.find((r) => !r.ok)));
    const report = await checkLedger(store);
    assert.deepEqual(report.violations, []);
    const stored = (await store.get<{ reserved: number; total: number }>('sku/shared'))!.value;
    assert.equal(stored.reserved, sold, 'every acknowledged reservation is in the ledger, and nothing else');
    assert.ok(stored.reserved <= stored.total, 'never oversold');
    if (unavailable === 0) assert.equal(sold, 50, 'with no give-ups the whole stock sells');
    await store.close();
  });
});
