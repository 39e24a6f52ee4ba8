// Deciding one operation against a batch's working set. Every decision reads
// what it needs from the working set, asks the pure domain what happens, and
// writes the outcome back through the layout only when the operation is
// accepted, so a rejected operation leaves the batch exactly as it found it.
import { adjust, newOrder, orderAsCreated, reserve, transition } from '../domain/ledger.ts';
import { holdsUnits } from '../domain/order-state.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import {
  type IdempotencyRecord,
  keys,
  operationCosts,
  writeAdjustment,
  writeIdempotency,
  writeNewOrder,
  writeOrderChange,
  writeSku,
} from '../layout.ts';
import type { IfMatch, Operation, Rejected, ResolvedIntent, Resource } from './operations.ts';
import { rejected } from './operations.ts';
import type { WorkingSet } from './working-set.ts';

export interface DecideContext {
  nowMs: number;
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  /** A fresh, time-ordered unique id (adjustment audit entries). */
  newId: () => string;
}

/** An accepted operation whose version becomes known once its commit (or the one ahead) lands. */
export interface Decided {
  ok: true;
  status: number;
  resource: Resource;
  /** The revision the resource is at, or 'commit' for the revision this batch commits at. */
  version: number | 'commit';
  replayed: boolean;
}

export type Decision = Decided | Rejected;

function accepted(status: number, resource: Resource): Decided {
  return { ok: true, status, resource, version: 'commit', replayed: false };
}

/** The version a key will have once this batch commits: its own revision if written here. */
function versionOf(ws: WorkingSet, key: string): number | 'commit' {
  return ws.writtenHere(key) ? 'commit' : ws.version(key);
}

export function decide(ws: WorkingSet, skuId: string, op: Operation, ctx: DecideContext): Decision {
  if (op.kind === 'reserve') return decideReserve(ws, skuId, op, ctx);
  const intent = op.kind === 'expire' ? undefined : op.idempotency;
  if (intent !== undefined) {
    const replay = replayRecorded(ws, intent, ctx.nowMs);
    if (replay !== undefined) return replay;
  }
  const decision = decideFresh(ws, skuId, op, ctx);
  if (decision.ok && intent !== undefined) recordIdempotency(ws, intent, decision, ctx);
  return decision;
}

function decideFresh(ws: WorkingSet, skuId: string, op: Exclude<Operation, { kind: 'reserve' }>, ctx: DecideContext) {
  const sku = readSku(ws, skuId);
  if (op.kind === 'upsert') return decideUpsert(ws, skuId, sku, op);
  if (sku === undefined) return rejected('sku_not_found', `no SKU ${skuId}`);
  if (op.kind === 'adjust') return decideAdjust(ws, sku, op, ctx);
  return decideTransition(ws, sku, op, ctx);
}

/** The SKU record as this batch sees it; every commit checks it, whatever else it checks. */
function readSku(ws: WorkingSet, skuId: string): SkuRecord | undefined {
  const key = keys.sku(skuId);
  ws.guard(key);
  return ws.get<SkuRecord>(key);
}

/**
 * A reservation's idempotency key is its order's id: an order already there
 * is the earlier request, replayed when it asked for the same thing; an
 * idempotency record there means the key went to another kind of mutation.
 */
function decideReserve(
  ws: WorkingSet,
  skuId: string,
  op: Extract<Operation, { kind: 'reserve' }>,
  ctx: DecideContext,
): Decision {
  const orderKey = keys.order(op.orderId);
  const existing = ws.get<OrderRecord>(orderKey);
  if (existing !== undefined) return replayReservation(ws, existing, skuId, op);
  const recorded = ws.get<IdempotencyRecord>(keys.idempotency(op.orderId));
  if (recorded !== undefined && recorded.expiresAtMs > ctx.nowMs) {
    return rejected('idempotency_key_reused', 'this Idempotency-Key was used for another kind of request');
  }
  const sku = readSku(ws, skuId);
  if (sku === undefined) return rejected('sku_not_found', `no SKU ${skuId}`);
  const held = sku.maxPerUser === null ? 0 : ws.heldUnits(op.userId);
  if (held === undefined) {
    return rejected('per_user_limit_exceeded', `user ${op.userId} has too many orders of SKU ${skuId} to count`, {
      maxPerUser: sku.maxPerUser,
    });
  }
  const outcome = reserve(sku, op.qty, held);
  if (!outcome.ok) return rejected(outcome.code, outcome.detail, outcome.extra);
  const order = newOrder({ id: op.orderId, sku, qty: op.qty, userId: op.userId }, ctx.nowMs, ctx.reservationTtlMs);
  ws.put(keys.sku(skuId), outcome.sku);
  writeNewOrder(ws, order);
  // Another SKU's writer could be creating an order under the same idempotency key.
  ws.guard(orderKey);
  ws.moveHeld(op.userId, op.qty);
  return accepted(201, { kind: 'order', order });
}

function replayReservation(
  ws: WorkingSet,
  order: OrderRecord,
  skuId: string,
  op: Extract<Operation, { kind: 'reserve' }>,
): Decision {
  if (order.sku !== skuId || order.qty !== op.qty || order.userId !== op.userId) {
    return rejected('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
  }
  const key = keys.order(order.id);
  const version = order.createdRevision ?? versionOf(ws, key);
  return { ok: true, status: 201, resource: { kind: 'order', order: orderAsCreated(order) }, version, replayed: true };
}

/** Replays or refuses a request whose idempotency key already holds a live record. */
function replayRecorded(ws: WorkingSet, intent: ResolvedIntent, nowMs: number): Decision | undefined {
  if (ws.get(keys.order(intent.id)) !== undefined) {
    return rejected('idempotency_key_reused', 'this Idempotency-Key was used for a reservation');
  }
  const key = keys.idempotency(intent.id);
  const record = ws.get<IdempotencyRecord>(key);
  if (record === undefined || record.expiresAtMs <= nowMs) return undefined;
  if (record.fingerprint !== intent.fingerprint) {
    return rejected('idempotency_key_reused', 'this Idempotency-Key was used with a different request');
  }
  return { ok: true, status: record.status, resource: record.result, version: versionOf(ws, key), replayed: true };
}

function recordIdempotency(ws: WorkingSet, intent: ResolvedIntent, decided: Decided, ctx: DecideContext): void {
  const key = keys.idempotency(intent.id);
  const previous = ws.get<IdempotencyRecord>(key);
  const record: IdempotencyRecord = {
    fingerprint: intent.fingerprint,
    status: decided.status,
    result: decided.resource,
    expiresAtMs: ctx.nowMs + ctx.idempotencyTtlMs,
  };
  writeIdempotency(ws, intent.id, record, previous);
  // Another SKU's writer could be recording a mutation under the same key.
  ws.guard(key);
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
  const outcome = transition(sku, order, op.kind === 'expire' ? 'expire' : op.action, ctx.nowMs);
  if (!outcome.ok) return rejected(outcome.code, outcome.detail, outcome.extra);
  const next = withCreatedRevision(ws, orderKey, order, outcome.order);
  ws.put(keys.sku(sku.sku), outcome.sku);
  writeOrderChange(ws, order, next);
  ws.moveHeld(order.userId, order.qty * (Number(holdsUnits(next.state)) - Number(holdsUnits(order.state))));
  return accepted(200, { kind: 'order', order: next });
}

/**
 * Keeps the revision that created the order before its first rewrite (until
 * then it is the order's version), so a retried reservation replays it. An
 * order this batch or the one ahead created has no revision yet; no client
 * can act on it before its creation is answered, so that never loses one.
 */
function withCreatedRevision(ws: WorkingSet, key: string, order: OrderRecord, next: OrderRecord): OrderRecord {
  if (order.createdRevision !== undefined) return next;
  const version = ws.version(key);
  return version > 0 && !ws.writtenHere(key) ? { ...next, createdRevision: version } : next;
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
  writeAdjustment(ws, sku.sku, ctx.newId(), { delta: op.delta, reason: op.reason, atMs: ctx.nowMs });
  return accepted(200, { kind: 'sku', sku: outcome.sku });
}

function sameCatalogEntry(sku: SkuRecord, entry: Extract<Operation, { kind: 'upsert' }>['entry']): boolean {
  return (
    sku.product === entry.product &&
    sku.size === entry.size &&
    sku.color === entry.color &&
    sku.priceCents === entry.priceCents &&
    sku.maxPerUser === entry.maxPerUser
  );
}

function decideUpsert(
  ws: WorkingSet,
  skuId: string,
  existing: SkuRecord | undefined,
  op: Extract<Operation, { kind: 'upsert' }>,
): Decision {
  const skuKey = keys.sku(skuId);
  if (preconditionFails(ws, skuKey, op.ifMatch)) {
    return rejected('precondition_failed', `SKU ${skuId} does not match If-Match`);
  }
  if (existing === undefined && op.initialStock === undefined) {
    return rejected('initial_stock_required', `SKU ${skuId} does not exist yet; creating it needs initialStock`);
  }
  if (existing !== undefined && op.initialStock !== undefined) {
    // PUT is idempotent (RFC 9110 §9.2.2): the same create again changes nothing and says so.
    if (sameCatalogEntry(existing, op.entry) && existing.initialStock === op.initialStock) {
      return {
        ok: true,
        status: 200,
        resource: { kind: 'sku', sku: existing },
        version: versionOf(ws, skuKey),
        replayed: true,
      };
    }
    return rejected('initial_stock_not_allowed', `SKU ${skuId} exists; change its stock with an adjustment`);
  }
  const next: SkuRecord = existing
    ? { ...existing, ...op.entry }
    : {
        sku: skuId,
        ...op.entry,
        total: op.initialStock ?? 0,
        reserved: 0,
        sold: 0,
        orderSeq: 0,
        initialStock: op.initialStock ?? 0,
      };
  writeSku(ws, existing, next);
  return accepted(existing === undefined ? 201 : 200, { kind: 'sku', sku: next });
}

/** Keys an operation reads besides the SKU record (the writer reads them for the whole batch at once). */
export function readKeys(op: Operation): string[] {
  switch (op.kind) {
    case 'reserve':
      return [keys.order(op.orderId), keys.idempotency(op.orderId)];
    case 'expire':
      return [keys.order(op.orderId)];
    default: {
      const read = op.kind === 'transition' && op.hint === undefined ? [keys.order(op.orderId)] : [];
      if (op.idempotency !== undefined) read.push(keys.order(op.idempotency.id), keys.idempotency(op.idempotency.id));
      return read;
    }
  }
}

/** Most writes and version checks an operation adds to a batch, the SKU record's included (any may be the first to write it). */
export function costUpperBound(op: Operation): { writes: number; checks: number } {
  const base = op.kind === 'expire' ? operationCosts.transition : operationCosts[op.kind];
  const intent = op.kind !== 'reserve' && op.kind !== 'expire' && op.idempotency !== undefined;
  const extra = intent ? operationCosts.idempotency : { writes: 0, checks: 0 };
  return {
    writes: base.writes + extra.writes + operationCosts.skuRecord.writes,
    checks: base.checks + extra.checks + operationCosts.skuRecord.checks,
  };
}
