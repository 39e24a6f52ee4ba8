// The offline ledger check behind `hotstock check`: recomputes every ledger
// figure and every index entry from the orders themselves (through the
// layout, which says what each order implies) and reports each disagreement.
// It reads through the store contract, page by page, so it works on any store
// and on catalogs far larger than memory would hold as records.
import { isDeepStrictEqual } from 'node:util';
import { scanPageEntries } from '../constants.ts';
import { available } from '../domain/ledger.ts';
import { holdsReservation, holdsSale } from '../domain/order-state.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import { keyParts, keys, orderIndexEntries, type SkuOrderEntry, seqOfKey, type UserOrderEntry } from '../layout.ts';
import type { Entry, Store } from '../store/contract.ts';
import { scanPrefix } from '../store/contract.ts';

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
  /** Highest order seq seen, which must be below the SKU's orderSeq. */
  seqMax: number;
}

type Report = (message: string) => void;

export async function checkLedger(store: Store): Promise<CheckReport> {
  const violations: string[] = [];
  const report: Report = (message) => {
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
  const tallies = new Map<string, Tally>([...skus.keys()].map((sku) => [sku, { reserved: 0, sold: 0, seqMax: -1 }]));
  const orders = await checkOrders(store, tallies, revision, report);
  for (const [skuId, sku] of skus) checkSku(sku, tallies.get(skuId)!, report);
  await checkCatalogIndex(store, skus, report);
  await checkOrderIndexes(store, report);
  return { revision, skus: skus.size, orders, violations };
}

function checkSku(sku: SkuRecord, tally: Tally, report: Report): void {
  for (const field of ['total', 'reserved', 'sold', 'orderSeq'] as const) {
    if (!Number.isSafeInteger(sku[field]) || sku[field] < 0) report(`SKU ${sku.sku}: ${field} is ${sku[field]}`);
  }
  if (available(sku) < 0) report(`SKU ${sku.sku}: available is ${available(sku)} (oversold)`);
  if (sku.reserved !== tally.reserved)
    report(`SKU ${sku.sku}: reserved is ${sku.reserved}, created orders hold ${tally.reserved}`);
  if (sku.sold !== tally.sold)
    report(`SKU ${sku.sku}: sold is ${sku.sold}, paid/shipped/completed orders hold ${tally.sold}`);
  if (tally.seqMax >= sku.orderSeq)
    report(`SKU ${sku.sku}: orderSeq ${sku.orderSeq} but an order has seq ${tally.seqMax}`);
}

/** Every order: its fields, its SKU's tallies, and the index entries the layout says it implies. */
async function checkOrders(store: Store, tallies: Map<string, Tally>, revision: number, report: Report) {
  let count = 0;
  for await (const page of scan<OrderRecord>(store, keys.orderPrefix)) {
    const implied = page.flatMap(({ value }) => orderIndexEntries(value));
    const stored = await store.getMany(implied.map((entry) => entry.key));
    for (const [i, { key, value: order, version }] of page.entries()) {
      count++;
      if (key !== keys.order(order.id)) report(`${key}: record names order ${order.id}`);
      if (version > revision) report(`order ${order.id}: version ${version} is after revision ${revision}`);
      const tally = tallies.get(order.sku);
      if (tally === undefined) {
        report(`order ${order.id}: SKU ${order.sku} does not exist`);
        continue;
      }
      if (!Number.isSafeInteger(order.qty) || order.qty <= 0) report(`order ${order.id}: qty ${order.qty}`);
      if (order.history.at(-1)?.state !== order.state)
        report(`order ${order.id}: history does not end in ${order.state}`);
      if (holdsReservation(order.state)) tally.reserved += order.qty;
      if (holdsSale(order.state)) tally.sold += order.qty;
      tally.seqMax = Math.max(tally.seqMax, order.seq);
      for (const j of [2 * i, 2 * i + 1]) {
        const want = implied[j]!;
        const found = stored[j];
        if (found === undefined) report(`order ${order.id}: index entry ${JSON.stringify(want.key)} is missing`);
        else if (!isDeepStrictEqual(found.value, want.value)) {
          report(`order ${order.id}: index entry ${JSON.stringify(want.key)} holds ${JSON.stringify(found.value)}`);
        }
      }
    }
  }
  return count;
}

async function checkCatalogIndex(store: Store, skus: Map<string, SkuRecord>, report: Report): Promise<void> {
  const indexed = new Set<string>();
  for await (const page of scan(store, keys.catalogPrefix)) {
    for (const entry of page) {
      const skuId = keyParts(entry.key, keys.catalogPrefix).at(-1)!;
      const sku = skus.get(skuId);
      if (sku === undefined || keys.catalog(sku) !== entry.key) {
        report(`catalog index entry ${JSON.stringify(entry.key)} does not match SKU ${skuId}`);
      }
      indexed.add(skuId);
    }
  }
  for (const skuId of skus.keys()) if (!indexed.has(skuId)) report(`SKU ${skuId}: missing from the catalog index`);
}

/** Index entries must point at orders that exist and imply exactly those entries. */
async function checkOrderIndexes(store: Store, report: Report): Promise<void> {
  for (const root of [keys.skuOrdersRoot, keys.userOrdersRoot]) {
    for await (const page of scan<SkuOrderEntry | UserOrderEntry>(store, root)) {
      const orders = await store.getMany<OrderRecord>(page.map((entry) => keys.order(entry.value.id)));
      orders.forEach((order, i) => {
        const entry = page[i]!;
        const implied = order && orderIndexEntries(order.value).some((want) => want.key === entry.key);
        if (order === undefined) report(`index entry ${JSON.stringify(entry.key)} points at a missing order`);
        else if (!implied || order.value.seq !== seqOfKey(entry.key)) {
          report(`index entry ${JSON.stringify(entry.key)} is not one order ${order.value.id} implies`);
        }
      });
    }
  }
}
