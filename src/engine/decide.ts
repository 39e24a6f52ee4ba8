// Deciding one operation against a batch's working set. Every decision reads
// what it needs from the working set, asks the pure domain what happens, and
// writes the outcome back only when the operation is accepted, so a rejected
// operation leaves the batch exactly as it found it.
import { adjustOpsMax, idempotencyOpsMax, reserveOpsMax, transitionOpsMax, upsertOpsMax } from '../constants.ts';
import { adjust, newOrder, reserve, transition } from '../domain/ledger.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import { keys } from '../store/keys.ts';
import type { IdempotencyIntent, IfMatch, Operation, Rejected } from './operations.ts';
import { rejected } from './operations.ts';
import { orderView, skuView } from './views.ts';
import type { WorkingSet } from './working-set.ts';

export interface DecideContext {
  nowMs: number;
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  newOrderId: () => string;
}

/** An accepted operation whose body gets its `version` once the commit's revision is known. */
export interface Decided {
  ok: true;
  status: number;
  body: Record<string, unknown>;
  /** The revision the body's version is, or 'commit' for the revision this batch commits at. */
  version: number | 'commit';
  replayed: boolean;
}

export type Decision = Decided | Rejected;

/** What an idempotency key stores: the answer to replay (body without its version). */
export interface IdempotencyRecord {
  fingerprint: string;
  status: number;
  body: Record<string, unknown>;
  expiresAtMs: number;
}

function accepted(status: number, body: Record<string, unknown>): Decided {
  return { ok: true, status, body, version: 'commit', replayed: false };
}

/** Replays or refuses a request whose idempotency key already holds a live record. */
export function checkIdempotency(ws: WorkingSet, intent: IdempotencyIntent, nowMs: number): Decision | undefined {
  const record = ws.get<IdempotencyRecord>(intent.storeKey);
  if (record === undefined || record.expiresAtMs <= nowMs) return undefined;
  if (record.fingerprint !== intent.fingerprint) {
    return rejected('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
  }
  const version = ws.writtenHere(intent.storeKey) ? 'commit' : ws.version(intent.storeKey);
  return { ok: true, status: record.status, body: record.body, version, replayed: true };
}

function recordIdempotency(ws: WorkingSet, intent: IdempotencyIntent, decided: Decided, ctx: DecideContext): void {
  const previous = ws.get<IdempotencyRecord>(intent.storeKey);
  if (previous !== undefined) ws.delete(keys.idempotencyExpiry(previous.expiresAtMs, intent.storeKey));
  const expiresAtMs = ctx.nowMs + ctx.idempotencyTtlMs;
  const record: IdempotencyRecord = {
    fingerprint: intent.fingerprint,
    status: decided.status,
    body: decided.body,
    expiresAtMs,
  };
  ws.put(intent.storeKey, record);
  ws.put(keys.idempotencyExpiry(expiresAtMs, intent.storeKey), '');
}

export function decide(ws: WorkingSet, skuId: string, op: Operation, ctx: DecideContext): Decision {
  const intent = 'idempotency' in op ? op.idempotency : undefined;
  if (intent !== undefined) {
    const replay = checkIdempotency(ws, intent, ctx.nowMs);
    if (replay !== undefined) return replay;
  }
  const decision = decideFresh(ws, skuId, op, ctx);
  if (decision.ok && intent !== undefined) recordIdempotency(ws, intent, decision, ctx);
  return decision;
}

function decideFresh(ws: WorkingSet, skuId: string, op: Operation, ctx: DecideContext): Decision {
  const skuKey = keys.sku(skuId);
  const sku = ws.get<SkuRecord>(skuKey);
  if (op.kind === 'upsert') return decideUpsert(ws, skuId, sku, op);
  if (sku === undefined) return rejected('sku_not_found', `no SKU ${skuId}`);
  switch (op.kind) {
    case 'reserve':
      return decideReserve(ws, sku, op, ctx);
    case 'transition':
    case 'expire':
      return decideTransition(ws, sku, op, ctx);
    case 'adjust':
      return decideAdjust(ws, sku, op, ctx);
  }
}

function decideReserve(
  ws: WorkingSet,
  sku: SkuRecord,
  op: Extract<Operation, { kind: 'reserve' }>,
  ctx: DecideContext,
): Decision {
  const unitsKey = keys.userUnits(sku.sku, op.userId);
  const held = ws.get<number>(unitsKey) ?? 0;
  const outcome = reserve(sku, op.qty, held);
  if (!outcome.ok) return rejected(outcome.code, outcome.detail, outcome.extra);
  const order = newOrder(
    { id: ctx.newOrderId(), sku, qty: op.qty, userId: op.userId },
    ctx.nowMs,
    ctx.reservationTtlMs,
  );
  ws.put(keys.sku(sku.sku), outcome.sku);
  ws.put(keys.order(order.id), order);
  ws.put(keys.userOrders(order.userId, order.id), '');
  ws.put(keys.skuOrders(order.sku, order.id), '');
  ws.put(keys.orderExpiry(order.expiresAtMs, order.id), order.sku);
  ws.put(unitsKey, held + op.qty);
  return accepted(201, { ...orderView(order, 0) });
}

function decideTransition(
  ws: WorkingSet,
  sku: SkuRecord,
  op: Extract<Operation, { kind: 'transition' | 'expire' }>,
  ctx: DecideContext,
): Decision {
  const orderKey = keys.order(op.orderId);
  const order = ws.get<OrderRecord>(orderKey);
  if (order === undefined || order.sku !== sku.sku) return rejected('order_not_found', `no order ${op.orderId}`);
  if (op.kind === 'transition' && preconditionFails(ws, orderKey, op.ifMatch)) {
    return rejected('precondition_failed', `order ${order.id} does not match If-Match`);
  }
  const action = op.kind === 'expire' ? 'expire' : op.action;
  const outcome = transition(sku, order, action, ctx.nowMs);
  if (!outcome.ok) return rejected(outcome.code, outcome.detail, outcome.extra);
  ws.put(keys.sku(sku.sku), outcome.sku);
  ws.put(orderKey, outcome.order);
  if (order.state === 'created') ws.delete(keys.orderExpiry(order.expiresAtMs, order.id));
  if (outcome.userUnitsDelta !== 0) {
    const unitsKey = keys.userUnits(order.sku, order.userId);
    const held = (ws.get<number>(unitsKey) ?? 0) + outcome.userUnitsDelta;
    if (held === 0) ws.delete(unitsKey);
    else ws.put(unitsKey, held);
  }
  return accepted(200, { ...orderView(outcome.order, 0) });
}

/**
 * If-Match fails when the key is absent, or (for a version list) when its
 * current version is not listed. A key this batch already rewrote will carry
 * the commit's revision, which no client can have seen, so it never matches a list.
 */
function preconditionFails(ws: WorkingSet, key: string, ifMatch: IfMatch | undefined): boolean {
  if (ifMatch === undefined) return false;
  if (ws.get(key) === undefined) return true;
  if (ifMatch === '*') return false;
  return ws.writtenHere(key) || !ifMatch.includes(ws.version(key));
}

function decideAdjust(
  ws: WorkingSet,
  sku: SkuRecord,
  op: Extract<Operation, { kind: 'adjust' }>,
  ctx: DecideContext,
): Decision {
  if (preconditionFails(ws, keys.sku(sku.sku), op.ifMatch)) {
    return rejected('precondition_failed', `SKU ${sku.sku} does not match If-Match`);
  }
  const outcome = adjust(sku, op.delta);
  if (!outcome.ok) return rejected(outcome.code, outcome.detail, outcome.extra);
  ws.put(keys.sku(sku.sku), outcome.sku);
  ws.put(keys.adjustment(sku.sku, ctx.newOrderId()), { delta: op.delta, reason: op.reason, atMs: ctx.nowMs });
  return accepted(200, { ...skuView(outcome.sku, 0) });
}

function decideUpsert(
  ws: WorkingSet,
  skuId: string,
  existing: SkuRecord | undefined,
  op: Extract<Operation, { kind: 'upsert' }>,
): Decision {
  if (preconditionFails(ws, keys.sku(skuId), op.ifMatch)) {
    return rejected('precondition_failed', `SKU ${skuId} does not match If-Match`);
  }
  if (existing === undefined && op.initialStock === undefined) {
    return rejected('initial_stock_required', `SKU ${skuId} does not exist yet; creating it needs initialStock`);
  }
  if (existing !== undefined && op.initialStock !== undefined) {
    return rejected('initial_stock_not_allowed', `SKU ${skuId} exists; change its stock with an adjustment`);
  }
  const next: SkuRecord = existing
    ? { ...existing, ...op.entry }
    : { sku: skuId, ...op.entry, total: op.initialStock ?? 0, reserved: 0, sold: 0 };
  if (existing !== undefined) ws.delete(keys.catalogIndex(existing.product, existing.size, existing.color, skuId));
  ws.put(keys.catalogIndex(next.product, next.size, next.color, skuId), '');
  ws.put(keys.sku(skuId), next);
  return accepted(existing === undefined ? 201 : 200, { ...skuView(next, 0) });
}

/** Keys an operation may read, beyond the SKU record, known before anything is read. */
export function firstReadKeys(skuId: string, op: Operation): string[] {
  const read: string[] = [];
  if ('idempotency' in op && op.idempotency !== undefined) read.push(op.idempotency.storeKey);
  if (op.kind === 'reserve') read.push(keys.userUnits(skuId, op.userId));
  if (op.kind === 'transition' || op.kind === 'expire') read.push(keys.order(op.orderId));
  return read;
}

/** Keys that depend on what the first read returned: the per-user counter of an order's owner. */
export function secondReadKeys(ws: WorkingSet, skuId: string, op: Operation): string[] {
  const read: string[] = [];
  if (op.kind === 'transition' || op.kind === 'expire') {
    const order = ws.get<OrderRecord>(keys.order(op.orderId));
    if (order !== undefined && order.sku === skuId) read.push(keys.userUnits(skuId, order.userId));
  }
  return read;
}

/**
 * Most checks plus writes one operation can add to a batch. Any accepted
 * operation may be the first to put the SKU record, so each bound includes that put.
 */
export function opsUpperBound(op: Operation): number {
  const idempotency = 'idempotency' in op && op.idempotency !== undefined ? idempotencyOpsMax : 0;
  const skuPut = 1;
  switch (op.kind) {
    case 'reserve':
      return reserveOpsMax + skuPut + idempotency;
    case 'transition':
    case 'expire':
      return transitionOpsMax + skuPut + idempotency;
    case 'adjust':
      return adjustOpsMax + skuPut + idempotency;
    case 'upsert':
      return upsertOpsMax + skuPut + idempotency;
  }
}
