// What callers ask a SKU writer to do, and what they get back.
import type { OrderAction } from '../domain/order-state.ts';
import type { CatalogEntry } from '../domain/types.ts';
import type { ErrorCode } from '../errors.ts';

/** A request's idempotency key, already scoped to its caller and fingerprinted. */
export interface IdempotencyIntent {
  storeKey: string;
  /** Hash of what the request asked for; a different one under the same key is 422. */
  fingerprint: string;
}

/** If-Match (RFC 9110 §13.1.1): `*` (the resource exists) or the versions any of which may match. */
export type IfMatch = '*' | readonly number[];

interface Guarded {
  /** What the caller expects (If-Match); a mismatch is 412 and changes nothing. */
  ifMatch?: IfMatch | undefined;
  idempotency?: IdempotencyIntent | undefined;
}

export type Operation =
  | { kind: 'reserve'; qty: number; userId: string; idempotency?: IdempotencyIntent | undefined }
  | ({ kind: 'transition'; orderId: string; action: Exclude<OrderAction, 'expire'> } & Guarded)
  | { kind: 'expire'; orderId: string }
  | ({ kind: 'adjust'; delta: number; reason: string } & Guarded)
  | ({ kind: 'upsert'; entry: CatalogEntry; initialStock?: number | undefined } & Guarded);

export interface Rejected {
  ok: false;
  code: ErrorCode;
  detail: string;
  extra?: Record<string, unknown> | undefined;
}

export interface Accepted {
  ok: true;
  status: number;
  /** The resource as a client sees it, `version` included. */
  body: Record<string, unknown> & { version: number };
  /** True when this is the recorded answer to an earlier request with the same idempotency key. */
  replayed: boolean;
}

export type OperationResult = Accepted | Rejected;

export function rejected(code: ErrorCode, detail: string, extra?: Record<string, unknown>): Rejected {
  return { ok: false, code, detail, extra };
}
