// The stock ledger: how reservations, transitions and adjustments move
// total / reserved / sold, and the invariants that must hold after each.
// Rejections are values (`sold_out` is a normal outcome); a broken invariant
// is a programmer error and throws.
import assert from 'node:assert/strict';
import { holdsReservation, holdsSale, nextState, type OrderAction } from './order-state.ts';
import type { OrderRecord, SkuRecord } from './types.ts';

export type Rejection<C extends string> = { ok: false; code: C; detail: string; extra?: Record<string, unknown> };

export function available(sku: SkuRecord): number {
  return sku.total - sku.reserved - sku.sold;
}

export function assertSkuInvariants(sku: SkuRecord): void {
  assert.ok(Number.isSafeInteger(sku.total) && sku.total >= 0, `sku ${sku.sku}: total ${sku.total}`);
  assert.ok(Number.isSafeInteger(sku.reserved) && sku.reserved >= 0, `sku ${sku.sku}: reserved ${sku.reserved}`);
  assert.ok(Number.isSafeInteger(sku.sold) && sku.sold >= 0, `sku ${sku.sku}: sold ${sku.sold}`);
  assert.ok(available(sku) >= 0, `sku ${sku.sku}: available ${available(sku)} is negative`);
  assert.ok(Number.isSafeInteger(sku.orderSeq) && sku.orderSeq >= 0, `sku ${sku.sku}: orderSeq ${sku.orderSeq}`);
}

export type ReserveRejectionCode = 'sold_out' | 'insufficient_stock' | 'per_user_limit_exceeded';
export type ReserveOutcome = { ok: true; sku: SkuRecord } | Rejection<ReserveRejectionCode>;

/** Holds `qty` units for a user who already holds `userHeldUnits` of this SKU; the new order takes `sku.orderSeq`. */
export function reserve(sku: SkuRecord, qty: number, userHeldUnits: number): ReserveOutcome {
  assert.ok(Number.isSafeInteger(qty) && qty > 0, `qty ${qty}`);
  const free = available(sku);
  if (free === 0) return { ok: false, code: 'sold_out', detail: `SKU ${sku.sku} is sold out` };
  if (free < qty) {
    return {
      ok: false,
      code: 'insufficient_stock',
      detail: `SKU ${sku.sku} has ${free} available, ${qty} requested`,
      extra: { available: free },
    };
  }
  if (sku.maxPerUser !== null && userHeldUnits + qty > sku.maxPerUser) {
    return {
      ok: false,
      code: 'per_user_limit_exceeded',
      detail: `user holds ${userHeldUnits} of SKU ${sku.sku}; the limit is ${sku.maxPerUser}`,
      extra: { maxPerUser: sku.maxPerUser, held: userHeldUnits },
    };
  }
  const next = { ...sku, reserved: sku.reserved + qty, orderSeq: sku.orderSeq + 1 };
  assertSkuInvariants(next);
  return { ok: true, sku: next };
}

export type TransitionRejectionCode = 'illegal_transition' | 'reservation_expired';
export type TransitionOutcome = { ok: true; sku: SkuRecord; order: OrderRecord } | Rejection<TransitionRejectionCode>;

/** Applies `action` to `order` and moves the SKU's ledger to match. */
export function transition(sku: SkuRecord, order: OrderRecord, action: OrderAction, nowMs: number): TransitionOutcome {
  assert.equal(order.sku, sku.sku, 'order belongs to another SKU');
  const to = nextState(order.state, action);
  const due = order.state === 'created' && nowMs >= order.expiresAtMs;
  if (to === undefined || (action === 'expire' && !due)) {
    return {
      ok: false,
      code: 'illegal_transition',
      detail: `cannot ${action} an order in state ${order.state}`,
      extra: { state: order.state },
    };
  }
  if (action === 'pay' && due) {
    return {
      ok: false,
      code: 'reservation_expired',
      detail: `reservation lapsed at ${new Date(order.expiresAtMs).toISOString()}`,
      extra: { state: order.state },
    };
  }
  const from = order.state;
  const q = order.qty;
  const next = {
    ...sku,
    reserved: sku.reserved + q * (Number(holdsReservation(to)) - Number(holdsReservation(from))),
    sold: sku.sold + q * (Number(holdsSale(to)) - Number(holdsSale(from))),
  };
  assertSkuInvariants(next);
  const nextOrder = { ...order, state: to, history: [...order.history, { state: to, atMs: nowMs }] };
  return { ok: true, sku: next, order: nextOrder };
}

export type AdjustOutcome = { ok: true; sku: SkuRecord } | Rejection<'adjustment_below_committed'>;

/** Restock (delta > 0) or write-off (delta < 0); never below what is reserved + sold. */
export function adjust(sku: SkuRecord, delta: number): AdjustOutcome {
  assert.ok(Number.isSafeInteger(delta), `delta ${delta}`);
  const total = sku.total + delta;
  const committed = sku.reserved + sku.sold;
  if (total < committed) {
    return {
      ok: false,
      code: 'adjustment_below_committed',
      detail: `total would be ${total} but ${committed} units are reserved or sold`,
      extra: { total: sku.total, reserved: sku.reserved, sold: sku.sold },
    };
  }
  const next = { ...sku, total };
  assertSkuInvariants(next);
  return { ok: true, sku: next };
}

/** A new order in `created`, holding its reservation until `nowMs + ttlMs`; `sku` as it was before the reservation. */
export function newOrder(
  fields: { id: string; sku: SkuRecord; qty: number; userId: string },
  nowMs: number,
  reservationTtlMs: number,
): OrderRecord {
  return {
    id: fields.id,
    sku: fields.sku.sku,
    qty: fields.qty,
    userId: fields.userId,
    state: 'created',
    priceCents: fields.sku.priceCents,
    createdAtMs: nowMs,
    expiresAtMs: nowMs + reservationTtlMs,
    history: [{ state: 'created', atMs: nowMs }],
    seq: fields.sku.orderSeq,
  };
}

/** The order as it was answered when it was created: what a retried reservation replays. */
export function orderAsCreated(order: OrderRecord): OrderRecord {
  return { ...order, state: 'created', history: order.history.slice(0, 1) };
}
