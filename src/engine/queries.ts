// Read-side queries: the catalog over its ordered (product, size, color, sku)
// index, orders by user (and SKU) over the user entries, by SKU over the SKU
// entries, and every order over the orders themselves. Pages are bounded both
// in what they return and in what they scan, and resume after a position: the
// last key a page covered, which the HTTP layer seals into an opaque cursor.
import { listLimitDefault, listScanEntriesMax } from '../constants.ts';
import type { OrderRecord, OrderState, SkuRecord } from '../domain/types.ts';
import { keyParts, keys, type SkuOrderEntry, type UserOrderEntry } from '../layout.ts';
import type { Entry, Store } from '../store/contract.ts';
import { prefixEnd } from '../store/contract.ts';
import { type Rejected, rejected } from './operations.ts';

export interface Versioned<T> {
  record: T;
  version: number;
}

export interface Page<T> {
  items: T[];
  /** Where the next page starts; null after the last item. */
  next: string | null;
}

/** Turns a page of scanned entries into items (undefined where an entry does not match). */
type Accept<T> = (entries: Entry[]) => Promise<(T | undefined)[]> | (T | undefined)[];

/**
 * Walks entries under `prefix` from just after `after`, keeping what `accept`
 * turns into items, until `limit` items are found and one more proves there is
 * a next page, the prefix ends, or the scan bound is reached.
 */
async function scanPage<T>(store: Store, prefix: string, after: string | undefined, limit: number, accept: Accept<T>) {
  const items: { item: T; key: string }[] = [];
  let start = after === undefined ? prefix : `${after}\u0000`;
  let scanned = 0;
  for (;;) {
    const pageSize = Math.min(limit + 1 - items.length, listScanEntriesMax - scanned);
    const entries = await store.range({ start, end: prefixEnd(prefix), limit: pageSize });
    scanned += entries.length;
    const accepted = await accept(entries);
    for (const [i, item] of accepted.entries()) if (item !== undefined) items.push({ item, key: entries[i]!.key });
    if (items.length > limit)
      return { items: items.slice(0, limit).map((found) => found.item), next: items[limit - 1]!.key };
    const last = entries.at(-1);
    if (entries.length < pageSize || last === undefined) return { items: items.map((found) => found.item), next: null };
    if (scanned >= listScanEntriesMax) return { items: items.map((found) => found.item), next: last.key };
    start = `${last.key}\u0000`;
  }
}

function checkPosition(after: string | undefined, prefix: string): Rejected | undefined {
  if (after === undefined || after.startsWith(prefix)) return undefined;
  return rejected('invalid_cursor', 'this cursor belongs to another query');
}

export interface SkuQuery {
  product?: string | undefined;
  size?: string | undefined;
  color?: string | undefined;
  limit?: number | undefined;
  after?: string | undefined;
}

export async function listSkus(
  store: Store,
  warmSku: (id: string) => Versioned<SkuRecord> | undefined,
  query: SkuQuery,
): Promise<Page<Versioned<SkuRecord>> | Rejected> {
  const attributes = [query.product, query.size, query.color];
  // The index serves any leading run of attributes as a prefix; later ones are filtered.
  const firstMissing = attributes.indexOf(undefined);
  const leading = (firstMissing === -1 ? attributes : attributes.slice(0, firstMissing)) as string[];
  const prefix = keys.catalogQuery(leading);
  const refused = checkPosition(query.after, prefix);
  if (refused) return refused;
  return scanPage(store, prefix, query.after, query.limit ?? listLimitDefault, (entries) =>
    entries.map((entry) => {
      const [product, size, color, sku] = keyParts(entry.key, keys.catalogPrefix);
      const matches = [product, size, color].every((part, i) => attributes[i] === undefined || attributes[i] === part);
      return matches && sku !== undefined ? warmSku(sku) : undefined;
    }),
  );
}

export interface OrderQuery {
  userId?: string | undefined;
  sku?: string | undefined;
  state?: OrderState | undefined;
  limit?: number | undefined;
  after?: string | undefined;
}

/** The prefix an order query walks: the narrowest index that serves its filters. */
function orderPrefix(query: OrderQuery): string {
  if (query.userId !== undefined && query.sku !== undefined) return keys.userSkuOrdersPrefix(query.userId, query.sku);
  if (query.userId !== undefined) return keys.userOrdersPrefix(query.userId);
  if (query.sku !== undefined) return keys.skuOrdersPrefix(query.sku);
  return keys.orderPrefix;
}

export async function listOrders(store: Store, query: OrderQuery): Promise<Page<Versioned<OrderRecord>> | Rejected> {
  const prefix = orderPrefix(query);
  const refused = checkPosition(query.after, prefix);
  if (refused) return refused;
  const byIndex = prefix !== keys.orderPrefix;
  const keep = (order: OrderRecord | undefined): order is OrderRecord =>
    order !== undefined && (query.state === undefined || order.state === query.state);
  return scanPage(store, prefix, query.after, query.limit ?? listLimitDefault, async (entries) => {
    const orders = byIndex
      ? await store.getMany<OrderRecord>(
          (entries as Entry<SkuOrderEntry | UserOrderEntry>[]).map((entry) => keys.order(entry.value.id)),
        )
      : (entries as Entry<OrderRecord>[]);
    return orders.map((entry) =>
      entry && keep(entry.value) ? { record: entry.value, version: entry.version } : undefined,
    );
  });
}
