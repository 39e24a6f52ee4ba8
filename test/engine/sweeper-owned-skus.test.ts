// In distributed mode an instance sweeps only the SKUs it writes: their
// lapsed reservations, and their lapsed idempotency records, so two
// instances never race to delete the same keys.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine, type EngineObserver } from '../../src/engine/engine.ts';
import { Sweeper } from '../../src/engine/sweeper.ts';
import { keys } from '../../src/layout.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { tempDataDir } from '../support/service.ts';

const idempotencyTtlMs = 50;
const observer: EngineObserver = { batchCommitted() {}, operationDecided() {}, storeFailed() {} };
const entry = { product: 'p', size: 'M', color: 'red', priceCents: 100, maxPerUser: null };

const { dir, remove } = tempDataDir();
const store = new LmdbStore({ dataDir: dir });
after(async () => {
  await store.close();
  remove();
});

test("a sweeper drops the lapsed idempotency records of the SKUs it sweeps, and leaves the others' to their owner", async () => {
  const engine = new Engine(store, { reservationTtlMs: 60_000, idempotencyTtlMs }, observer);
  for (const sku of ['mine', 'theirs']) {
    assert.ok((await engine.upsert(sku, { entry, initialStock: 5 }, {})).ok);
    const intent = { scope: 'client', key: `adjust-${sku}`, fingerprint: `f-${sku}` };
    const adjusted = await engine.adjust(sku, { delta: 1, reason: 'restock' }, { idempotency: intent });
    assert.ok(adjusted.ok);
  }
  const idempotencyKeys = async () =>
    (await store.range({ start: keys.idempotencyPrefix, end: `${keys.idempotencyPrefix}\uffff`, limit: 100 })).map(
      (found) => found.key,
    );
  assert.equal((await idempotencyKeys()).length, 2);
  await sleep(2 * idempotencyTtlMs);

  const here = new Sweeper(
    engine,
    60_000,
    (error) => assert.fail(String(error)),
    (sku) => sku === 'mine',
  );
  assert.equal((await here.sweep()).idempotencyRecordsDropped, 1);
  const left = await idempotencyKeys();
  assert.equal(left.length, 1, "the other owner's record is left");
  const leftRecord = await store.get<{ result: { sku: { sku: string } } }>(left[0]!);
  assert.equal(leftRecord?.value.result.sku.sku, 'theirs');

  const there = new Sweeper(
    engine,
    60_000,
    (error) => assert.fail(String(error)),
    (sku) => sku === 'theirs',
  );
  assert.equal((await there.sweep()).idempotencyRecordsDropped, 1);
  assert.deepEqual(await idempotencyKeys(), []);
});
