// What callers ask a SKU writer to do, and what they get back.
import type { TransitionAction } from '../domain/order-state.ts';
import type { CatalogEntry, OrderRecord, SkuRecord } from '../domain/types.ts';
import type { ErrorCode } from '../errors.ts';
import { type Entry, FenceRefusal, StoreFailure } from '../store/contract.ts';

/**
 * A request's idempotency key as the HTTP layer hands it over: the caller's
 * scope, the key, and (for mutations other than reservations, whose own
 * fields are what a retry must match) a hash of what the request asked for.
 */
export interface IdempotencyIntent {
  scope: string;
  key: string;
  fingerprint?: string | undefined;
}

/** The intent as the writer uses it: the idempotency id the layout derives from scope and key. */
export interface ResolvedIntent {
  id: string;
  fingerprint: string;
}

/** If-Match (RFC 9110 §13.1.1): `*` (the resource exists) or the versions any of which may match. */
export type IfMatch = '*' | readonly number[];

interface Guarded {
  /** What the caller expects (If-Match); a mismatch is 412 and changes nothing. */
  ifMatch?: IfMatch | undefined;
  idempotency?: ResolvedIntent | undefined;
}

export type Operation =
  | {
      kind: 'reserve';
      qty: number;
      userId: string;
      /** The new order's id: the idempotency id, or a fresh id for a caller without a key. */
      orderId: string;
    }
  | ({
      kind: 'transition';
      orderId: string;
      action: TransitionAction;
      /** The order as read to route the request here; its version is checked at commit. */
      hint?: Entry<OrderRecord> | undefined;
    } & Guarded)
  | { kind: 'expire'; orderId: string }
  | ({ kind: 'adjust'; delta: number; reason: string } & Guarded)
  | ({ kind: 'upsert'; entry: CatalogEntry; initialStock?: number | undefined } & Guarded);

/** What an accepted operation answers with: the resource as it now is (or, replayed, as it was then). */
export type Resource = { kind: 'order'; order: OrderRecord } | { kind: 'sku'; sku: SkuRecord };

export interface Rejected {
  ok: false;
  code: ErrorCode;
  detail: string;
  extra?: Record<string, unknown> | undefined;
  /** Certainly not applied because this instance does not own the SKU: the owner may take it instead. */
  reroutable?: true;
}

export interface Accepted {
  ok: true;
  status: number;
  resource: Resource;
  /** The store revision that last wrote the resource: its ETag. */
  version: number;
  /** True when this is the recorded answer to an earlier request with the same idempotency key. */
  replayed: boolean;
}

export type OperationResult = Accepted | Rejected;

export function rejected(code: ErrorCode, detail: string, extra?: Record<string, unknown>): Rejected {
  return { ok: false, code, detail, extra };
}

/** A store failure's answer: its own code when the store gave one (breaker open, out of space). */
export function storeRejection(error: unknown, detail: string): Rejected {
  if (error instanceof FenceRefusal) return { ...rejected(error.code, error.message), reroutable: true };
  if (error instanceof StoreFailure) return rejected(error.code, error.message);
  return rejected('store_unavailable', detail);
}
