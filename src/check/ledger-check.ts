// The offline ledger check behind `hotstock check`: recomputes every ledger
// figure and every index from the orders themselves and reports each
// disagreement. It reads through the store contract, page by page, so it works
// on any store and on catalogs far larger than memory would hold as records.
import { scanPageEntries } from '../constants.ts';
import { available } from '../domain/ledger.ts';
import { holdsReservation, holdsSale, holdsUnits } from '../domain/order-state.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import type { Entry, Store } from '../store/contract.ts';
import { scanPrefix } from '../store/contract.ts';
import { keys } from '../store/keys.ts';

export interface CheckReport {
  revision: number;
  skus: number;
  orders: number;
  violations: string[];
}

/** Violations kept in a report; a badly broken store should not print a million lines. */
const violationsReportedMax = 1_000;

function scan<V>(store: Store, prefix: string): AsyncGenerator<Entry<V>[]> {
  return scanPrefix<V>(store, prefix, scanPageEntries);
}

interface Tally {
  reserved: number;
  sold: number;
}

export async function checkLedger(store: Store): Promise<CheckReport> {
  const violations: string[] = [];
  const report = (message: string) => {
    if (violations.length < violationsReportedMax) violations.push(message);
  };
  const revision = await store.revision();
  const skus = new Map<string, SkuRecord>();
  for await (const page of scan<SkuRecord>(store, keys.skuPrefix)) {
    for (const entry of page) {
      skus.set(entry.value.sku, entry.value);
      if (keys.sku(entry.value.sku) !== entry.key) report(`${entry.key}: record names SKU ${entry.value.sku}`);
      if (entry.version > revision) report(`${entry.key}: version ${entry.version} is after revision ${revision}`);
    }
  }
  const tallies = new Map<string, Tally>([...skus.keys()].map((sku) => [sku, { reserved: 0, sold: 0 }]));
  const userUnits = new Map<string, number>();
  const orders = await checkOrders(store, { tallies, userUnits, revision, report });
  for (const [skuId, sku] of skus) checkSku(sku, tallies.get(skuId)!, report);
  await checkUserUnits(store, userUnits, report);
  await checkCatalogIndex(store, skus, report);
  await checkOrderIndexes(store, report);
  return { revision, skus: skus.size, orders, violations };
}

function checkSku(sku: SkuRecord, tally: Tally, report: (message: string) => void): void {
  for (const field of ['total', 'reserved', 'sold'] as const) {
    if (!Number.isSafeInteger(sku[field]) || sku[field] < 0) report(`SKU ${sku.sku}: ${field} is ${sku[field]}`);
  }
  if (available(sku) < 0) report(`SKU ${sku.sku}: available is ${available(sku)} (oversold)`);
  if (sku.reserved !== tally.reserved)
    report(`SKU ${sku.sku}: reserved is ${sku.reserved}, created orders hold ${tally.reserved}`);
  if (sku.sold !== tally.sold)
    report(`SKU ${sku.sku}: sold is ${sku.sold}, paid/shipped/completed orders hold ${tally.sold}`);
}

/** What the order pass accumulates: ledger tallies per SKU and unit counts per (SKU, user). */
interface OrderPass {
  tallies: Map<string, Tally>;
  userUnits: Map<string, number>;
  revision: number;
  report: (message: string) => void;
}

async function checkOrders(store: Store, { tallies, userUnits, revision, report }: OrderPass): Promise<number> {
  let count = 0;
  for await (const page of scan<OrderRecord>(store, keys.orderPrefix)) {
    const indexKeys = page.flatMap(({ value: order }) => [
      keys.userOrders(order.userId, order.id),
      keys.skuOrders(order.sku, order.id),
      keys.orderExpiry(order.expiresAtMs, order.id),
    ]);
    const indexes = await store.getMany(indexKeys);
    for (const [i, { key, value: order, version }] of page.entries()) {
      count++;
      const tally = tallies.get(order.sku);
      if (key !== keys.order(order.id)) report(`${key}: record names order ${order.id}`);
      if (version > revision) report(`order ${order.id}: version ${version} is after revision ${revision}`);
      if (tally === undefined) {
        report(`order ${order.id}: SKU ${order.sku} does not exist`);
        continue;
      }
      if (!Number.isSafeInteger(order.qty) || order.qty <= 0) report(`order ${order.id}: qty ${order.qty}`);
      if (order.history.at(-1)?.state !== order.state)
        report(`order ${order.id}: history does not end in ${order.state}`);
      if (holdsReservation(order.state)) tally.reserved += order.qty;
      if (holdsSale(order.state)) tally.sold += order.qty;
      if (holdsUnits(order.state)) {
        const unitsKey = keys.userUnits(order.sku, order.userId);
        userUnits.set(unitsKey, (userUnits.get(unitsKey) ?? 0) + order.qty);
      }
      const [byUser, bySku, expiry] = indexes.slice(i * 3, i * 3 + 3);
      if (byUser === undefined) report(`order ${order.id}: missing from the per-user index`);
      if (bySku === undefined) report(`order ${order.id}: missing from the per-SKU index`);
      if ((expiry !== undefined) !== (order.state === 'created')) {
        report(`order ${order.id} (${order.state}): expiry entry ${expiry ? 'present' : 'missing'}`);
      }
    }
  }
  return count;
}

async function checkUserUnits(
  store: Store,
  expected: Map<string, number>,
  report: (message: string) => void,
): Promise<void> {
  const seen = new Set<string>();
  for await (const page of scan<number>(store, keys.userUnitsRoot)) {
    for (const entry of page) {
      seen.add(entry.key);
      const want = expected.get(entry.key) ?? 0;
      if (entry.value !== want) report(`${JSON.stringify(entry.key)}: holds ${entry.value}, orders say ${want}`);
    }
  }
  for (const [key, units] of expected) {
    if (!seen.has(key)) report(`${JSON.stringify(key)}: missing, orders hold ${units}`);
  }
}

async function checkCatalogIndex(
  store: Store,
  skus: Map<string, SkuRecord>,
  report: (message: string) => void,
): Promise<void> {
  const indexed = new Set<string>();
  for await (const page of scan(store, keys.catalogIndexPrefix)) {
    for (const entry of page) {
      const skuId = keys.lastPart(entry.key);
      const sku = skus.get(skuId);
      if (sku === undefined || keys.catalogIndex(sku.product, sku.size, sku.color, skuId) !== entry.key) {
        report(`catalog index entry ${JSON.stringify(entry.key)} does not match SKU ${skuId}`);
      }
      indexed.add(skuId);
    }
  }
  for (const skuId of skus.keys()) if (!indexed.has(skuId)) report(`SKU ${skuId}: missing from the catalog index`);
}

/** Index entries must point at orders that exist (and, for expiry, are still `created`). */
async function checkOrderIndexes(store: Store, report: (message: string) => void): Promise<void> {
  for (const prefix of [keys.userOrdersRoot, keys.skuOrdersRoot, keys.orderExpiryPrefix]) {
    for await (const page of scan(store, prefix)) {
      const orderIds = page.map((entry) => keys.lastPart(entry.key));
      const orders = await store.getMany<OrderRecord>(orderIds.map((id) => keys.order(id)));
      orders.forEach((order, i) => {
        if (order === undefined) report(`index entry ${JSON.stringify(page[i]!.key)} points at a missing order`);
        else if (prefix === keys.orderExpiryPrefix && order.value.state !== 'created') {
          report(`expiry entry for order ${order.value.id} in state ${order.value.state}`);
        }
      });
    }
  }
}
