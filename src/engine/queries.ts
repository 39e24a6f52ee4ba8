// Read-side queries: catalog listing over the ordered composite index
// (product, size, color, sku) and order listing over the per-user and per-SKU
// indexes. Pages are bounded both in what they return and in what they scan,
// and resume from an opaque cursor (the last index key examined).
import { listLimitDefault, listScanEntriesMax } from '../constants.ts';
import type { OrderRecord, OrderState } from '../domain/types.ts';
import { HttpProblem } from '../errors.ts';
import type { Entry, Store } from '../store/contract.ts';
import { prefixEnd } from '../store/contract.ts';
import { keys } from '../store/keys.ts';
import type { Engine } from './engine.ts';
import { type OrderView, orderView, type SkuView } from './views.ts';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string | undefined, prefix: string): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!key.startsWith(prefix)) throw new HttpProblem('invalid_cursor', 'this cursor belongs to another query');
  return key;
}

/**
 * Walks index entries under `prefix` from just after `cursor`, keeping those
 * `accept` turns into items, until `limit` items or the scan bound.
 */
async function scanPage<T>(
  store: Store,
  prefix: string,
  cursor: string | undefined,
  limit: number,
  accept: (entries: Entry[]) => Promise<(T | undefined)[]>,
): Promise<Page<T>> {
  const items: T[] = [];
  let start = cursor === undefined ? prefix : `${cursor}\u0000`;
  let scanned = 0;
  for (;;) {
    const pageSize = Math.min(limit - items.length, listScanEntriesMax - scanned);
    const entries = await store.range({ start, end: prefixEnd(prefix), limit: pageSize });
    scanned += entries.length;
    const accepted = await accept(entries);
    for (const item of accepted) if (item !== undefined) items.push(item);
    const last = entries.at(-1);
    if (entries.length < pageSize || last === undefined) return { items, nextCursor: null };
    if (items.length >= limit || scanned >= listScanEntriesMax) return { items, nextCursor: encodeCursor(last.key) };
    start = `${last.key}\u0000`;
  }
}

export interface SkuQuery {
  product?: string | undefined;
  size?: string | undefined;
  color?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

export async function listSkus(store: Store, engine: Engine, query: SkuQuery): Promise<Page<SkuView>> {
  const attributes = [query.product, query.size, query.color];
  // The index serves any leading run of attributes as a prefix; later ones are filtered.
  const firstMissing = attributes.indexOf(undefined);
  const leading = (firstMissing === -1 ? attributes : attributes.slice(0, firstMissing)) as string[];
  const prefix = keys.catalogIndexQuery(leading);
  const cursor = decodeCursor(query.cursor, prefix);
  return scanPage(store, prefix, cursor, query.limit ?? listLimitDefault, async (entries) =>
    entries.map((entry) => {
      const [product, size, color, sku] = entry.key.slice(keys.catalogIndexPrefix.length).split('\u0000');
      const matches = [product, size, color].every((part, i) => attributes[i] === undefined || attributes[i] === part);
      return matches && sku !== undefined ? engine.getSku(sku) : undefined;
    }),
  );
}

export interface OrderQuery {
  userId?: string | undefined;
  sku?: string | undefined;
  state?: OrderState | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

export async function listOrders(store: Store, query: OrderQuery): Promise<Page<OrderView>> {
  const byIndex = query.userId !== undefined || query.sku !== undefined;
  const prefix =
    query.userId !== undefined
      ? keys.userOrdersPrefix(query.userId)
      : query.sku !== undefined
        ? keys.skuOrdersPrefix(query.sku)
        : keys.orderPrefix;
  const cursor = decodeCursor(query.cursor, prefix);
  const keep = (order: OrderRecord | undefined) =>
    order !== undefined &&
    (query.sku === undefined || order.sku === query.sku) &&
    (query.state === undefined || order.state === query.state);
  return scanPage(store, prefix, cursor, query.limit ?? listLimitDefault, async (entries) => {
    const orders: (Entry<OrderRecord> | undefined)[] = byIndex
      ? await store.getMany<OrderRecord>(entries.map((entry) => keys.order(keys.lastPart(entry.key))))
      : (entries as Entry<OrderRecord>[]);
    return orders.map((entry) => (entry && keep(entry.value) ? orderView(entry.value, entry.version) : undefined));
  });
}

export async function getOrder(store: Store, id: string): Promise<OrderView | undefined> {
  const entry = await store.get<OrderRecord>(keys.order(id));
  return entry && orderView(entry.value, entry.version);
}
