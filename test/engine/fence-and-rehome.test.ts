// What a move asks of the engine, on two real LMDB stores: fencing a SKU
// lets its commits in flight land and holds new requests (answering none of
// them); rehoming points the writer at the other store with the SKU as read
// there, and the held requests are then decided against it; a fence lifted
// without a move leaves the SKU where it was. Time spent fenced does not
// count against the queue-wait bound, so a move sheds nothing.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SkuRecord } from '../../src/domain/types.ts';
import { Engine, type EngineObserver } from '../../src/engine/engine.ts';
import type { OperationResult } from '../../src/engine/operations.ts';
import type { StoreRouting } from '../../src/engine/store-routing.ts';
import { keys } from '../../src/layout.ts';
import type { Store } from '../../src/store/contract.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { tempDataDir } from '../support/service.ts';

const dirs: (() => void)[] = [];
after(() => {
  for (const remove of dirs) remove();
});

function openStore(): LmdbStore {
  const { dir, remove } = tempDataDir('engine-fence');
  dirs.push(remove);
  return new LmdbStore({ dataDir: dir });
}

const quiet: EngineObserver = { batchCommitted() {}, operationDecided() {}, storeFailed() {} };

/** Two stores and a routing the test switches by hand, as a move would. */
function twoStores() {
  const home = openStore();
  const other = openStore();
  const on = new Map<string, Store>();
  const routing: StoreRouting = {
    home,
    storeFor: (sku) => on.get(sku) ?? home,
    stores: () => [home, other],
    holdsAny: () => true,
    getOrder: (id) => home.get(keys.order(id)),
    stable: (work) => work(),
  };
  return { home, other, on, routing };
}

const entry = { product: 'tee', size: 'M', color: 'red', priceCents: 100, maxPerUser: null };

async function created(engine: Engine, sku: string): Promise<void> {
  const result = await engine.upsert(sku, { entry, initialStock: 100 }, {});
  assert.ok(result.ok, JSON.stringify(result));
}

function reserve(engine: Engine, sku: string, n: number): Promise<OperationResult> {
  return engine.reserve(sku, { qty: 1, userId: `u${n}` }, { scope: 'test', key: `fence-${sku}-${n}` });
}

test('a fenced SKU holds new requests, then decides them on the store it moved to', async () => {
  const { home, other, on, routing } = twoStores();
  const engine = new Engine(home, { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000, routing }, quiet);
  await created(engine, 'moving');
  let answered = 0;
  const count = (results: Promise<OperationResult>[]) => {
    for (const result of results) void result.then(() => answered++);
    return results;
  };
  const early = count(Array.from({ length: 20 }, (_, n) => reserve(engine, 'moving', n)));
  await early[0];
  await engine.fenceSku('moving');
  // What was decided before the fence has landed and been answered; the rest is held.
  const landedBeforeFence = answered;
  assert.ok(landedBeforeFence >= 1);
  assert.equal((await home.get<SkuRecord>(keys.sku('moving')))?.value.reserved, landedBeforeFence);
  const held = count(Array.from({ length: 10 }, (_, n) => reserve(engine, 'moving', 100 + n)));
  await sleep(50);
  assert.equal(answered, landedBeforeFence, 'nothing is decided while fenced');
  const record = (await home.get<SkuRecord>(keys.sku('moving')))!;
  const copied = await other.commit([], [{ type: 'put', key: keys.sku('moving'), value: record.value }]);
  assert.ok(copied.ok);
  on.set('moving', other);
  engine.rehomeSku('moving', other, { record: record.value, version: copied.revision });
  const after = await Promise.all(held);
  assert.ok(after.every((result) => result.ok));
  assert.equal(
    (await other.get<SkuRecord>(keys.sku('moving')))?.value.reserved,
    30,
    'decided and committed on the new store',
  );
  assert.equal((await home.get<SkuRecord>(keys.sku('moving')))?.value.reserved, 20, 'the old store has what it had');
  assert.equal(engine.getSku('moving')?.version, (await other.get(keys.sku('moving')))?.version);
  await Promise.all([home.close(), other.close()]);
});

test('a fence lifted without a move leaves the SKU where it was, and its wait sheds nothing', async () => {
  const { home, routing } = twoStores();
  const shedQueueWaitMs = 20;
  const engine = new Engine(
    home,
    { reservationTtlMs: 60_000, idempotencyTtlMs: 60_000, shedQueueWaitMs, routing },
    quiet,
  );
  await created(engine, 'staying');
  await engine.fenceSku('staying');
  const held = Array.from({ length: 10 }, (_, n) => reserve(engine, 'staying', n));
  // Held far longer than the queue-wait bound: a fence is the service's doing, not overload.
  await sleep(shedQueueWaitMs * 10);
  const late = reserve(engine, 'staying', 99);
  engine.unfenceSku('staying');
  const results = await Promise.all([...held, late]);
  assert.deepEqual(
    results.map((result) => (result.ok ? 'ok' : result.code)),
    Array.from({ length: 11 }, () => 'ok'),
  );
  assert.equal((await home.get<SkuRecord>(keys.sku('staying')))?.value.reserved, 11);
  await home.close();
});
