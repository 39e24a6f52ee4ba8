// How records look on the wire (HTTP API v1): the engine returns records, and
// this is the one place that turns them into views. `version` is the store
// revision that last wrote the record and doubles as its ETag.
import { available } from '../domain/ledger.ts';
import type { CatalogEntry, OrderRecord, SkuRecord } from '../domain/types.ts';
import type { Resource } from '../engine/operations.ts';

export interface SkuView extends CatalogEntry {
  sku: string;
  total: number;
  reserved: number;
  sold: number;
  available: number;
  version: number;
}

export function skuView(record: SkuRecord, version: number): SkuView {
  return {
    sku: record.sku,
    product: record.product,
    size: record.size,
    color: record.color,
    priceCents: record.priceCents,
    maxPerUser: record.maxPerUser,
    total: record.total,
    reserved: record.reserved,
    sold: record.sold,
    available: available(record),
    version,
  };
}

export interface OrderView {
  id: string;
  sku: string;
  qty: number;
  userId: string;
  state: string;
  priceCents: number;
  createdAt: string;
  expiresAt: string;
  history: { state: string; at: string }[];
  version: number;
}

export function orderView(order: OrderRecord, version: number): OrderView {
  // A new order's history holds one entry, at its creation: one date to format, not two.
  const createdAt = new Date(order.createdAtMs).toISOString();
  const isoOf = (atMs: number) => (atMs === order.createdAtMs ? createdAt : new Date(atMs).toISOString());
  return {
    id: order.id,
    sku: order.sku,
    qty: order.qty,
    userId: order.userId,
    state: order.state,
    priceCents: order.priceCents,
    createdAt,
    expiresAt: new Date(order.expiresAtMs).toISOString(),
    history: order.history.map((change) => ({ state: change.state, at: isoOf(change.atMs) })),
    version,
  };
}

export function etag(version: number): string {
  return `"${version}"`;
}

/** The view of what an operation answered with. */
export function resourceView(resource: Resource, version: number): SkuView | OrderView {
  return resource.kind === 'order' ? orderView(resource.order, version) : skuView(resource.sku, version);
}
