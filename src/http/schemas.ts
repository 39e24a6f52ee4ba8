// JSON schemas for API v1: validated strictly (no coercion, no unknown
// fields) and published as OpenAPI at /docs.
import {
  batchRequestItemsMax,
  idLengthMax,
  labelLengthMax,
  listLimitMax,
  orderQtyMax,
  priceCentsMax,
  reasonLengthMax,
  stockUnitsMax,
} from '../constants.ts';
import { orderStates } from '../domain/types.ts';

/** Ids: 1..128 characters, none of them a control, format or separator (space) character. */
export const idSchema = {
  type: 'string',
  minLength: 1,
  maxLength: idLengthMax,
  pattern: '^[^\\p{C}\\p{Z}]+$',
} as const;

export const labelSchema = {
  type: 'string',
  minLength: 1,
  maxLength: labelLengthMax,
  pattern: '^[^\\p{C}]+$',
} as const;
const cursorSchema = { type: 'string', minLength: 1, maxLength: 4096, pattern: '^[A-Za-z0-9_-]+$' } as const;

export const skuViewSchema = {
  type: 'object',
  required: [
    'sku',
    'product',
    'size',
    'color',
    'priceCents',
    'maxPerUser',
    'total',
    'reserved',
    'sold',
    'available',
    'version',
  ],
  properties: {
    sku: { type: 'string' },
    product: { type: 'string' },
    size: { type: 'string' },
    color: { type: 'string' },
    priceCents: { type: 'integer' },
    maxPerUser: { type: ['integer', 'null'] },
    total: { type: 'integer' },
    reserved: { type: 'integer' },
    sold: { type: 'integer' },
    available: { type: 'integer' },
    version: { type: 'integer' },
  },
} as const;

export const orderViewSchema = {
  type: 'object',
  required: ['id', 'sku', 'qty', 'userId', 'state', 'priceCents', 'createdAt', 'expiresAt', 'history', 'version'],
  properties: {
    id: { type: 'string' },
    sku: { type: 'string' },
    qty: { type: 'integer' },
    userId: { type: 'string' },
    state: { type: 'string', enum: [...orderStates] },
    priceCents: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time' },
    history: {
      type: 'array',
      items: {
        type: 'object',
        required: ['state', 'at'],
        properties: { state: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
      },
    },
    version: { type: 'integer' },
  },
} as const;

export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
  },
  additionalProperties: true,
} as const;

/** Every route answers errors as problem+json. */
export const errorResponses = { '4xx': problemSchema, '5xx': problemSchema } as const;

/** A listing page: items in index order and the cursor for the next page (null at the end). */
export function pageSchema(itemSchema: object) {
  return {
    type: 'object',
    required: ['items', 'nextCursor'],
    properties: { items: { type: 'array', items: itemSchema }, nextCursor: { type: ['string', 'null'] } },
  } as const;
}

export const skuParamsSchema = {
  type: 'object',
  required: ['sku'],
  properties: { sku: idSchema },
  additionalProperties: false,
} as const;

export const orderParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: idSchema },
  additionalProperties: false,
} as const;

export const putSkuBodySchema = {
  type: 'object',
  required: ['product', 'size', 'color', 'priceCents'],
  additionalProperties: false,
  properties: {
    product: labelSchema,
    size: labelSchema,
    color: labelSchema,
    priceCents: { type: 'integer', minimum: 0, maximum: priceCentsMax },
    maxPerUser: { type: ['integer', 'null'], minimum: 1, maximum: stockUnitsMax },
    initialStock: { type: 'integer', minimum: 0, maximum: stockUnitsMax },
  },
} as const;

export const adjustmentBodySchema = {
  type: 'object',
  required: ['delta', 'reason'],
  additionalProperties: false,
  properties: {
    delta: { type: 'integer', minimum: -stockUnitsMax, maximum: stockUnitsMax, not: { const: 0 } },
    reason: { type: 'string', minLength: 1, maxLength: reasonLengthMax, pattern: '^[^\\p{Cc}]+$' },
  },
} as const;

const reservationProperties = {
  sku: idSchema,
  qty: { type: 'integer', minimum: 1, maximum: orderQtyMax },
  userId: idSchema,
} as const;

export const orderBodySchema = {
  type: 'object',
  required: ['sku', 'qty', 'userId'],
  additionalProperties: false,
  properties: reservationProperties,
} as const;

export const batchBodySchema = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: batchRequestItemsMax,
      items: {
        type: 'object',
        required: ['sku', 'qty', 'userId', 'idempotencyKey'],
        additionalProperties: false,
        properties: { ...reservationProperties, idempotencyKey: idSchema },
      },
    },
  },
} as const;

const limitSchema = { type: 'integer', minimum: 1, maximum: listLimitMax } as const;

export const listSkusQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { product: labelSchema, size: labelSchema, color: labelSchema, limit: limitSchema, cursor: cursorSchema },
} as const;

export const listOrdersQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    userId: idSchema,
    sku: idSchema,
    state: { type: 'string', enum: [...orderStates] },
    limit: limitSchema,
    cursor: cursorSchema,
  },
} as const;

export const idempotentHeadersSchema = {
  type: 'object',
  properties: { 'idempotency-key': idSchema, 'if-match': { type: 'string', maxLength: 64 } },
} as const;
