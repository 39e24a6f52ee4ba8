// The records hotstock keeps. Pure data: no I/O, no clock reads.

export const orderStates = ['created', 'paid', 'shipped', 'completed', 'cancelled', 'expired'] as const;
export type OrderState = (typeof orderStates)[number];

/** Catalog attributes an admin sets with `PUT /v1/skus/{sku}`. */
export interface CatalogEntry {
  product: string;
  size: string;
  color: string;
  priceCents: number;
  /** Units one user may hold of this SKU at once; null means no limit. */
  maxPerUser: number | null;
}

/** A SKU's catalog entry and its stock ledger. `available` is derived, never stored. */
export interface SkuRecord extends CatalogEntry {
  sku: string;
  /** Units received, net of adjustments. */
  total: number;
  /** Units held by orders in `created`. */
  reserved: number;
  /** Units in orders that are `paid`, `shipped` or `completed`. */
  sold: number;
  /** Orders ever created for this SKU: the next order's `seq`. */
  orderSeq: number;
  /** The stock it was created with: a repeated, identical create changes nothing. */
  initialStock: number;
}

export interface StateChange {
  state: OrderState;
  atMs: number;
}

export interface OrderRecord {
  id: string;
  sku: string;
  qty: number;
  userId: string;
  state: OrderState;
  priceCents: number;
  createdAtMs: number;
  /** When an unpaid reservation lapses; meaningful only while `created`. */
  expiresAtMs: number;
  history: StateChange[];
  /** Position among its SKU's orders, in creation order (see layout.ts). */
  seq: number;
  /**
   * Revision of the commit that created the order, kept once the order is
   * rewritten (until then it is the order's own version): a retried
   * reservation replays the original answer, version included.
   */
  createdRevision?: number;
}
