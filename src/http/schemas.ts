// JSON schemas for API v1: validated strictly (no coercion of bodies, no
// unknown fields) and published as the OpenAPI document at /docs. Resources
// and request bodies are named schemas (`ref('Sku')`), registered once with
// Fastify and with the validators, so the document's components are the
// schemas the server checks. Every constrained field has a description that
// says what is allowed: validation errors quote it (problem.ts).
import {
  batchRequestItemsMax,
  cursorLengthMax,
  idLengthMax,
  labelLengthMax,
  listLimitMax,
  moveSkusMax,
  orderQtyMax,
  priceCentsMax,
  reasonLengthMax,
  stockUnitsMax,
} from '../constants.ts';
import { orderStates } from '../domain/types.ts';

/** The named schemas below: /docs lists them under #/components/schemas. */
export type SchemaName =
  | 'Sku'
  | 'Order'
  | 'SkuPage'
  | 'OrderPage'
  | 'SkuUpsert'
  | 'Adjustment'
  | 'Reservation'
  | 'BatchItem'
  | 'BatchRequest'
  | 'BatchResult'
  | 'BatchResults'
  | 'Problem'
  | 'ValidationIssue'
  | 'Status'
  | 'AdminStatus'
  | 'RoutingTable'
  | 'MoveRequest'
  | 'Move'
  | 'MoveList'
  | 'ShadowMismatches';

/** A reference to a named schema (`$ref` as Fastify and Ajv resolve it). */
export function ref(name: SchemaName): { $ref: string } {
  return { $ref: `${name}#` };
}

/** Ids: 1..128 characters, none of them a control, format or separator (space) character. */
export const idSchema = {
  type: 'string',
  minLength: 1,
  maxLength: idLengthMax,
  pattern: '^[^\\p{C}\\p{Z}]+$',
  description: `1 to ${idLengthMax} printable characters, no spaces`,
} as const;

export const labelSchema = {
  type: 'string',
  minLength: 1,
  maxLength: labelLengthMax,
  pattern: '^[^\\p{C}]+$',
  description: `1 to ${labelLengthMax} printable characters`,
} as const;

export const cursorSchema = {
  type: 'string',
  minLength: 1,
  maxLength: cursorLengthMax,
  pattern: '^[A-Za-z0-9_-]+$',
  description: 'the nextCursor of the previous page of the same query, as it was given',
} as const;

const limitSchema = {
  type: 'integer',
  minimum: 1,
  maximum: listLimitMax,
  description: `items per page, 1 to ${listLimitMax} (digits); 50 when absent`,
} as const;

const skuSchema = {
  $id: 'Sku',
  type: 'object',
  description: 'A catalog entry with its stock ledger: available = total - reserved - sold',
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
  additionalProperties: false,
  properties: {
    sku: { type: 'string' },
    product: { type: 'string' },
    size: { type: 'string' },
    color: { type: 'string' },
    priceCents: { type: 'integer' },
    maxPerUser: { type: ['integer', 'null'], description: 'units one user may hold; null: no limit' },
    total: { type: 'integer', description: 'units received, net of adjustments' },
    reserved: { type: 'integer', description: 'units in created (unpaid) orders' },
    sold: { type: 'integer', description: 'units in paid, shipped and completed orders' },
    available: { type: 'integer' },
    version: { type: 'integer', description: 'the store revision that last wrote it; also its ETag' },
  },
} as const;

const orderSchema = {
  $id: 'Order',
  type: 'object',
  required: ['id', 'sku', 'qty', 'userId', 'state', 'priceCents', 'createdAt', 'expiresAt', 'history', 'version'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    sku: { type: 'string' },
    qty: { type: 'integer' },
    userId: { type: 'string' },
    state: { type: 'string', enum: [...orderStates] },
    priceCents: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time', description: 'when a created order lapses unless paid' },
    history: {
      type: 'array',
      items: {
        type: 'object',
        required: ['state', 'at'],
        additionalProperties: false,
        properties: { state: { type: 'string', enum: [...orderStates] }, at: { type: 'string', format: 'date-time' } },
      },
    },
    version: { type: 'integer', description: 'the store revision that last wrote it; also its ETag' },
  },
} as const;

const validationIssueSchema = {
  $id: 'ValidationIssue',
  type: 'object',
  required: ['location', 'pointer', 'message'],
  properties: {
    location: { type: 'string', enum: ['body', 'querystring', 'params', 'headers'] },
    pointer: { type: 'string', description: 'JSON pointer (RFC 6901) to the field within the location' },
    message: { type: 'string', description: 'what was wrong and what is allowed' },
  },
} as const;

const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'An RFC 9457 problem: every error, with a stable snake_case code',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string', description: 'urn:hotstock:problem:<code>' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    errors: { type: 'array', items: ref('ValidationIssue'), description: 'validation_failed: the field at fault' },
    unknownSkus: { type: 'array', items: { type: 'string' }, description: 'sku_not_found from the watch' },
    state: { type: 'string', enum: [...orderStates], description: 'the order state, on a refused transition' },
    available: { type: 'integer', description: 'insufficient_stock: units available' },
    header: { type: 'string', description: 'unsupported_header: the header the route cannot honour' },
    reason: { type: 'string', enum: ['client_quota', 'user_attempts'], description: 'rate_limited: which bound' },
    retryAfterSeconds: { type: 'integer', description: 'rate_limited: as Retry-After' },
  },
  additionalProperties: true,
} as const;

/** A listing page: items in index order and the cursor for the next page (null at the end). */
function pageSchema(id: 'SkuPage' | 'OrderPage', item: 'Sku' | 'Order') {
  return {
    $id: id,
    type: 'object',
    required: ['items', 'nextCursor'],
    additionalProperties: false,
    properties: {
      items: { type: 'array', items: ref(item) },
      nextCursor: { type: ['string', 'null'], description: 'pass as ?cursor= for the next page; null at the end' },
    },
  } as const;
}

const skuUpsertSchema = {
  $id: 'SkuUpsert',
  type: 'object',
  description: 'Catalog fields; creating a SKU also takes initialStock, updating refuses it',
  required: ['product', 'size', 'color', 'priceCents'],
  additionalProperties: false,
  properties: {
    product: labelSchema,
    size: labelSchema,
    color: labelSchema,
    priceCents: {
      type: 'integer',
      minimum: 0,
      maximum: priceCentsMax,
      description: `an integer from 0 to ${priceCentsMax}`,
    },
    maxPerUser: {
      type: ['integer', 'null'],
      minimum: 1,
      maximum: stockUnitsMax,
      description: `units one user may hold, 1 to ${stockUnitsMax}, or null (or absent) for no limit`,
    },
    initialStock: {
      type: 'integer',
      minimum: 0,
      maximum: stockUnitsMax,
      description: `units received when the SKU is created, 0 to ${stockUnitsMax}`,
    },
  },
} as const;

const adjustmentSchema = {
  $id: 'Adjustment',
  type: 'object',
  required: ['delta', 'reason'],
  additionalProperties: false,
  properties: {
    delta: {
      type: 'integer',
      minimum: -stockUnitsMax,
      maximum: stockUnitsMax,
      not: { const: 0 },
      description: `a non-zero integer from -${stockUnitsMax} to ${stockUnitsMax}: a restock above 0, a write-off below`,
    },
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: reasonLengthMax,
      pattern: '^[^\\p{Cc}]+$',
      description: `1 to ${reasonLengthMax} characters, no control characters`,
    },
  },
} as const;

const reservationProperties = {
  sku: idSchema,
  qty: { type: 'integer', minimum: 1, maximum: orderQtyMax, description: `an integer from 1 to ${orderQtyMax}` },
  userId: idSchema,
} as const;

export const reservationSchema = {
  $id: 'Reservation',
  type: 'object',
  required: ['sku', 'qty', 'userId'],
  additionalProperties: false,
  properties: reservationProperties,
} as const;

const batchItemSchema = {
  $id: 'BatchItem',
  type: 'object',
  required: ['sku', 'qty', 'userId', 'idempotencyKey'],
  additionalProperties: false,
  properties: { ...reservationProperties, idempotencyKey: idSchema },
} as const;

const batchRequestSchema = {
  $id: 'BatchRequest',
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: batchRequestItemsMax,
      items: ref('BatchItem'),
      description: `1 to ${batchRequestItemsMax} reservations`,
    },
  },
} as const;

const batchResultSchema = {
  $id: 'BatchResult',
  type: 'object',
  description: 'One item: the status and body POST /v1/orders would have answered',
  required: ['status', 'body'],
  additionalProperties: false,
  properties: {
    status: { type: 'integer', enum: [200, 201, 400, 404, 409, 422, 429, 503] },
    body: { oneOf: [ref('Order'), ref('Problem')] },
  },
} as const;

const batchResultsSchema = {
  $id: 'BatchResults',
  type: 'object',
  required: ['results'],
  additionalProperties: false,
  properties: { results: { type: 'array', items: ref('BatchResult'), description: 'in the order of the items' } },
} as const;

const statusSchema = {
  $id: 'Status',
  type: 'object',
  required: ['status'],
  additionalProperties: false,
  properties: { status: { type: 'string', enum: ['ok', 'ready'] } },
} as const;

const adminStatusSchema = {
  $id: 'AdminStatus',
  type: 'object',
  required: ['store', 'breaker'],
  properties: {
    store: {
      type: 'object',
      required: ['kind', 'limits', 'revision'],
      properties: {
        kind: { type: 'string', enum: ['lmdb', 'etcd'] },
        limits: { type: 'object', additionalProperties: { type: 'integer' } },
        revision: { type: ['integer', 'null'], description: 'the store revision; null when it could not be read' },
        revisionError: { type: 'string' },
      },
    },
    breaker: {
      type: ['object', 'null'],
      description: 'the circuit breaker around etcd; null on the embedded store',
      properties: { state: { type: 'string' }, openedCount: { type: 'integer' } },
    },
    etcd: {
      type: 'object',
      additionalProperties: true,
      description: 'etcd mode: endpoints, prefix, members, alarms, DB size against the quota, problems, warnings',
    },
    cluster: {
      type: 'object',
      additionalProperties: true,
      description:
        'etcd mode: this instance (memberId, url, connected), the live members, and the shards of SKUs: how many ' +
        'this instance holds and serves, and how many each member owns',
    },
  },
} as const;

const storeKindSchema = { type: 'string', enum: ['lmdb', 'etcd'] } as const;

const mirrorStatusSchema = {
  type: 'object',
  description: 'One direction of the mirror: the outbox of `from` applied to `to`',
  required: ['from', 'to', 'phase', 'recordedSeq', 'appliedSeq', 'lagRevisions', 'lagSeconds', 'breaker'],
  properties: {
    from: storeKindSchema,
    to: storeKindSchema,
    phase: { type: 'string', enum: ['starting', 'copying', 'running'], description: 'copying: the initial copy' },
    recordedSeq: { type: 'integer', description: 'the last outbox entry recorded' },
    appliedSeq: { type: 'integer', description: 'every entry through this one is applied' },
    lagRevisions: { type: 'integer', description: 'commits recorded and not yet applied' },
    lagSeconds: { type: 'number', description: 'age of the oldest commit not yet applied' },
    appliedEntries: { type: 'integer', description: 'entries applied since start' },
    outboxEntries: { type: 'integer', description: 'entries the outbox holds' },
    breaker: { type: 'string', description: "the direction's own circuit breaker" },
    lastError: { type: ['string', 'null'] },
  },
} as const;

const routingTableSchema = {
  $id: 'RoutingTable',
  type: 'object',
  required: ['home', 'mirror', 'defaultStore', 'seeded', 'mirrors', 'skus', 'items', 'nextCursor'],
  additionalProperties: false,
  properties: {
    home: { ...storeKindSchema, description: 'the store named by --store' },
    mirror: { type: ['string', 'null'], enum: ['lmdb', 'etcd', null], description: '--mirror; null without one' },
    defaultStore: { ...storeKindSchema, description: 'where a SKU no move has touched is authoritative' },
    seeded: { type: 'boolean', description: 'the initial copy into the mirror is in' },
    mirrors: { type: 'array', items: mirrorStatusSchema },
    skus: {
      type: 'object',
      additionalProperties: { type: 'integer' },
      description: 'SKUs by authoritative store',
    },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['sku', 'store', 'moveId', 'mirrorLagRevisions', 'mirrorLagSeconds'],
        additionalProperties: false,
        properties: {
          sku: { type: 'string' },
          store: { ...storeKindSchema, description: 'its authoritative store' },
          moveId: { type: ['string', 'null'], description: 'the move that put it there' },
          mirrorLagRevisions: { type: 'integer', description: 'the lag of the mirror its store feeds' },
          mirrorLagSeconds: { type: 'number' },
        },
      },
    },
    nextCursor: { type: ['string', 'null'], description: 'pass as ?cursor= for the next page; null at the end' },
  },
} as const;

const moveRequestSchema = {
  $id: 'MoveRequest',
  type: 'object',
  description: '{"to": "lmdb" or "etcd"} and exactly one of skus, product or percent',
  required: ['to'],
  minProperties: 2,
  maxProperties: 2,
  additionalProperties: false,
  properties: {
    to: { ...storeKindSchema, description: 'the store the SKUs move to' },
    skus: {
      type: 'array',
      minItems: 1,
      maxItems: moveSkusMax,
      uniqueItems: true,
      items: idSchema,
      description: `1 to ${moveSkusMax} SKU ids, each once`,
    },
    product: labelSchema,
    percent: {
      type: 'integer',
      minimum: 1,
      maximum: 100,
      description: 'an integer from 1 to 100: that share of the catalog, in a stable order by a hash of the SKU id',
    },
  },
} as const;

const moveSchema = {
  $id: 'Move',
  type: 'object',
  required: ['id', 'to', 'from', 'selector', 'state', 'selected', 'moved', 'createdAt', 'updatedAt', 'error'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    to: storeKindSchema,
    from: storeKindSchema,
    selector: {
      type: 'object',
      description: 'what the move was asked to take: {skus}, {product} or {percent}',
      properties: {
        skus: { type: 'array', items: { type: 'string' } },
        product: { type: 'string' },
        percent: { type: 'integer' },
      },
    },
    state: {
      type: 'string',
      enum: ['pending', 'moving', 'rolling_back', 'done', 'failed'],
      description: 'done: every SKU is on `to`; failed: rolled back, every SKU is where it was',
    },
    selected: { type: 'integer', description: 'SKUs the selection held when the move began' },
    moved: { type: 'integer', description: 'SKUs this move has on `to` now' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    error: { type: ['string', 'null'], description: 'why it rolled back' },
  },
} as const;

const moveListSchema = {
  $id: 'MoveList',
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: { items: { type: 'array', items: ref('Move'), description: 'newest first' } },
} as const;

const shadowSideSchema = {
  type: 'object',
  required: ['store', 'version', 'value'],
  properties: {
    store: storeKindSchema,
    version: { type: ['integer', 'null'], description: "the record's version on that store; null when absent" },
    value: { description: 'the record as that store holds it; null when absent' },
  },
} as const;

const shadowMismatchesSchema = {
  $id: 'ShadowMismatches',
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array',
      description: 'newest first',
      items: {
        type: 'object',
        required: ['at', 'kind', 'id', 'authoritative', 'mirror'],
        additionalProperties: false,
        properties: {
          at: { type: 'string', format: 'date-time' },
          kind: { type: 'string', enum: ['sku', 'order'] },
          id: { type: 'string' },
          authoritative: shadowSideSchema,
          mirror: shadowSideSchema,
        },
      },
    },
  },
} as const;

/** Every named schema, in the order the document lists them. */
export const namedSchemas: readonly ({ $id: SchemaName } & Record<string, unknown>)[] = [
  skuSchema,
  orderSchema,
  pageSchema('SkuPage', 'Sku'),
  pageSchema('OrderPage', 'Order'),
  skuUpsertSchema,
  adjustmentSchema,
  reservationSchema,
  batchItemSchema,
  batchRequestSchema,
  batchResultSchema,
  batchResultsSchema,
  problemSchema,
  validationIssueSchema,
  statusSchema,
  adminStatusSchema,
  routingTableSchema,
  moveRequestSchema,
  moveSchema,
  moveListSchema,
  shadowMismatchesSchema,
];

export const routingQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { ...limitSchema, description: `SKUs per page, 1 to ${listLimitMax} (digits); ${listLimitMax} when absent` },
    cursor: cursorSchema,
  },
} as const;

/** `X-Canary: shadow` asks a read to be compared with the mirror too (never changing its answer). */
export const canaryHeader = {
  type: 'string',
  enum: ['shadow'],
  description: 'shadow: also compare this read with the mirror (the answer is the same either way)',
} as const;

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

/** A move is named by an id in the path, as an order is. */
export const moveParamsSchema = orderParamsSchema;

export const listSkusQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    product: labelSchema,
    size: labelSchema,
    color: labelSchema,
    limit: limitSchema,
    cursor: cursorSchema,
  },
} as const;

export const listOrdersQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    userId: idSchema,
    sku: idSchema,
    state: { type: 'string', enum: [...orderStates], description: `one of ${orderStates.join(', ')}` },
    limit: limitSchema,
    cursor: cursorSchema,
  },
} as const;

const idempotencyKeyHeader = {
  ...idSchema,
  description: 'a key of yours for this request: a retry with the same key and body replays the first answer',
} as const;
const ifMatchHeader = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  description: 'the ETag(s) the resource must have ("7", a list, or *): else 412, nothing changes',
} as const;
const ifNoneMatchHeader = {
  type: 'string',
  minLength: 1,
  maxLength: 256,
  description: 'an ETag you hold: 304 Not Modified (no body) when it is still current',
} as const;

/** The request headers of a route: Idempotency-Key (required or not), If-Match, If-None-Match. */
export function requestHeaders(options: {
  idempotencyKey?: 'required' | 'optional';
  ifMatch?: boolean;
  ifNoneMatch?: boolean;
  canary?: boolean;
}) {
  return {
    type: 'object',
    required: options.idempotencyKey === 'required' ? ['idempotency-key'] : [],
    properties: {
      ...(options.idempotencyKey ? { 'idempotency-key': idempotencyKeyHeader } : {}),
      ...(options.ifMatch ? { 'if-match': ifMatchHeader } : {}),
      ...(options.ifNoneMatch ? { 'if-none-match': ifNoneMatchHeader } : {}),
      ...(options.canary ? { 'x-canary': canaryHeader } : {}),
    },
  } as const;
}

const etagHeader = { type: 'string', description: 'the version, quoted: "7"' } as const;

/** A success response with a JSON body and the headers it carries. */
export function jsonResponse(
  description: string,
  schema: object,
  headers: { etag?: boolean; location?: boolean; replay?: boolean } = {},
) {
  return {
    description,
    headers: {
      ...(headers.etag ? { ETag: etagHeader } : {}),
      ...(headers.location ? { Location: { type: 'string', description: 'the path of the created resource' } } : {}),
      ...(headers.replay
        ? { 'Idempotent-Replayed': { type: 'string', enum: ['true'], description: 'this is a replayed answer' } }
        : {}),
    },
    content: { 'application/json': { schema } },
  };
}

export const notModifiedResponse = {
  description: 'Not Modified: If-None-Match holds the current ETag; no body',
  type: 'null',
  headers: { ETag: etagHeader },
} as const;
