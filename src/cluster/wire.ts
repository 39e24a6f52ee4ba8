// The internal protocol between instances. A forwarded request carries
// mutations of SKUs the receiver owns, as the HTTP layer validated them (the
// same bodies, with the caller's idempotency scope and key, so a key retried
// on any instance lands on the same order), and the answer carries the
// engine's results, which the sender renders exactly as it would its own.
// The receiver validates the request like any other (http/routes-internal.ts);
// the sender validates the answer here: a peer is trusted no further than
// its shapes.
import { Ajv } from 'ajv';
import { clusterForwardOpsMax, idLengthMax, stockUnitsMax } from '../constants.ts';
import type { TransitionAction } from '../domain/order-state.ts';
import { orderStates } from '../domain/types.ts';
import type { IdempotencyIntent, IfMatch, OperationResult } from '../engine/operations.ts';
import { errorCatalogue } from '../errors.ts';

export const forwardedOperationsPath = '/internal/v1/operations';

/** A SKU upsert as `PUT /v1/skus/{sku}` takes it. */
export interface SkuUpsertBody {
  product: string;
  size: string;
  color: string;
  priceCents: number;
  maxPerUser?: number | null;
  initialStock?: number;
}

interface Guards {
  ifMatch?: IfMatch;
  intent?: IdempotencyIntent;
}

export type ForwardedOp =
  | { kind: 'reserve'; reservation: { sku: string; qty: number; userId: string }; intent?: IdempotencyIntent }
  | ({ kind: 'transition'; sku: string; orderId: string; action: TransitionAction } & Guards)
  | ({ kind: 'adjust'; sku: string; adjustment: { delta: number; reason: string } } & Guards)
  | ({ kind: 'upsert'; sku: string; upsert: SkuUpsertBody } & Guards);

export interface ForwardedRequest {
  ops: ForwardedOp[];
}

/** The SKU whose owner a forwarded operation goes to. */
export function skuOfOp(op: ForwardedOp): string {
  return op.kind === 'reserve' ? op.reservation.sku : op.sku;
}

const safeInteger = { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } as const;
const count = { type: 'integer', minimum: 0, maximum: stockUnitsMax } as const;
const id = { type: 'string', minLength: 1, maxLength: idLengthMax } as const;

const skuRecordSchema = {
  type: 'object',
  required: ['sku', 'product', 'size', 'color', 'priceCents', 'maxPerUser', 'total', 'reserved', 'sold'],
  properties: {
    sku: id,
    product: { type: 'string' },
    size: { type: 'string' },
    color: { type: 'string' },
    priceCents: safeInteger,
    maxPerUser: { type: ['integer', 'null'] },
    total: count,
    reserved: count,
    sold: count,
  },
} as const;

/** Dates are milliseconds a JavaScript Date can hold, so rendering them cannot throw. */
const dateMs = { type: 'integer', minimum: -8.64e15, maximum: 8.64e15 } as const;

const orderRecordSchema = {
  type: 'object',
  required: ['id', 'sku', 'qty', 'userId', 'state', 'priceCents', 'createdAtMs', 'expiresAtMs', 'history'],
  properties: {
    id,
    sku: id,
    qty: count,
    userId: id,
    state: { enum: [...orderStates] },
    priceCents: safeInteger,
    createdAtMs: dateMs,
    expiresAtMs: dateMs,
    history: {
      type: 'array',
      maxItems: orderStates.length,
      items: {
        type: 'object',
        required: ['state', 'atMs'],
        properties: { state: { enum: [...orderStates] }, atMs: dateMs },
      },
    },
  },
} as const;

const resultSchema = {
  oneOf: [
    {
      type: 'object',
      required: ['ok', 'status', 'resource', 'version', 'replayed'],
      additionalProperties: false,
      properties: {
        ok: { const: true },
        status: { enum: [200, 201] },
        resource: {
          oneOf: [
            {
              type: 'object',
              required: ['kind', 'order'],
              properties: { kind: { const: 'order' }, order: orderRecordSchema },
            },
            { type: 'object', required: ['kind', 'sku'], properties: { kind: { const: 'sku' }, sku: skuRecordSchema } },
          ],
        },
        version: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
        replayed: { type: 'boolean' },
      },
    },
    {
      type: 'object',
      required: ['ok', 'code', 'detail'],
      additionalProperties: false,
      properties: {
        ok: { const: false },
        code: { enum: Object.keys(errorCatalogue) },
        detail: { type: 'string', maxLength: 4_096 },
        extra: { type: 'object' },
        reroutable: { const: true },
      },
    },
  ],
} as const;

const answerSchema = {
  type: 'object',
  required: ['results'],
  additionalProperties: false,
  properties: { results: { type: 'array', maxItems: clusterForwardOpsMax, items: resultSchema } },
} as const;

const validateAnswer = new Ajv({ allErrors: false, strict: false, coerceTypes: false }).compile(answerSchema);

/** The results of a forwarded request's answer, one per operation sent; undefined when it is not such an answer. */
export function resultsOf(body: unknown, sent: number): OperationResult[] | undefined {
  if (!validateAnswer(body)) return undefined;
  const { results } = body as { results: OperationResult[] };
  return results.length === sent ? results : undefined;
}
