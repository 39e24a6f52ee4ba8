// Catching up with a revision (a shard just taken in distributed mode): the
// engine's warm state must hold every SKU commit made before it. The SKU
// feed proves it as soon as it delivers a commit at or after the revision;
// a read of every SKU proves it when the store is quiet.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine, type EngineObserver } from '../../src/engine/engine.ts';
import type { Entry, RangeQuery } from '../../src/store/contract.ts';
import { DelegatingStore } from '../../src/store/delegating-store.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { tempDataDir } from '../support/service.ts';

const removers: (() => void)[] = [];
after(() => {
  for (const remove of removers) remove();
});

const observer: EngineObserver = { batchCommitted() {}, operationDecided() {}, storeFailed() {} };
const entry = { product: 'p', size: 'M', color: 'red', priceCents: 100, maxPerUser: null };

/** A store whose range reads wait while `held` (an engine's read of every SKU, stalled). */
class HeldReads extends DelegatingStore {
  held = false;
  override async range<V = unknown>(query: RangeQuery): Promise<Entry<V>[]> {
    while (this.held) await sleep(10);
    return this.inner.range<V>(query);
  }
}

/** Another instance's engine (the shard's previous owner) and this one's, sharing one store. */
async function twoEngines() {
  const { dir, remove } = tempDataDir();
  removers.push(remove);
  const store = new LmdbStore({ dataDir: dir });
  const previous = new Engine(store, { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000 }, observer);
  assert.ok((await previous.upsert('c', { entry, initialStock: 10 }, {})).ok);
  const reads = new HeldReads(store);
  const next = new Engine(reads, { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000 }, observer);
  const unfollow = next.followStore();
  await next.warm();
  const close = async () => {
    unfollow();
    await store.close();
  };
  return { store, previous, next, reads, close };
}

/** Settles to 'done' or 'pending' after a pause long enough for anything ready to have run. */
async function settled(promise: Promise<void>): Promise<'done' | 'pending'> {
  return Promise.race([promise.then(() => 'done' as const), sleep(200).then(() => 'pending' as const)]);
}

describe('catching up with a revision', () => {
  test('the SKU feed proves it with a commit at or after the revision, while a read is stalled', async () => {
    const { store, previous, next, reads, close } = await twoEngines();
    try {
      const takenAt = (await store.revision()) + 1;
      reads.held = true;
      const caughtUp = next.catchUp(takenAt);
      assert.equal(await settled(caughtUp), 'pending', 'nothing has reached the revision yet');
      assert.ok((await previous.reserve('c', { qty: 2, userId: 'u1' })).ok);
      assert.equal(await settled(caughtUp), 'done', 'the feed delivered a commit at the revision');
      assert.equal(next.getSku('c')?.record.reserved, 2, 'and the warm state holds it');
    } finally {
      reads.held = false;
      await close();
    }
  });

  test('a quiet store is proven by a read of every SKU', async () => {
    const { store, next, close } = await twoEngines();
    try {
      assert.equal(await settled(next.catchUp((await store.revision()) + 1)), 'done');
    } finally {
      await close();
    }
  });

  test('a revision the feed has passed already is caught up at once, with no read', async () => {
    const { store, previous, next, reads, close } = await twoEngines();
    try {
      assert.ok((await previous.reserve('c', { qty: 1, userId: 'u1' })).ok);
      const reached = await store.revision();
      while (next.getSku('c')?.record.reserved !== 1) await sleep(10);
      reads.held = true;
      assert.equal(await settled(next.catchUp(reached)), 'done');
    } finally {
      reads.held = false;
      await close();
    }
  });
});
