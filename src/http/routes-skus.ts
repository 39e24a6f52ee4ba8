// Catalog and stock routes: PUT/GET a SKU, list the catalog, adjust stock.
import type { FastifyInstance } from 'fastify';
import type { CatalogEntry } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { Mutations } from '../engine/mutations.ts';
import { HttpProblem } from '../errors.ts';
import { type CursorSealer, cursorBinding, listingPage } from './cursor.ts';
import { ifMatchOf, optionalIdempotency, requiredIdempotency, sendResult, sendVersioned } from './request-context.ts';
import type { ShadowHook } from './routes-cutover.ts';
import {
  jsonResponse,
  listSkusQuerySchema,
  notModifiedResponse,
  ref,
  requestHeaders,
  skuParamsSchema,
} from './schemas.ts';
import { skuView } from './views.ts';

interface SkuParams {
  sku: string;
}

interface SkuQuery {
  product?: string;
  size?: string;
  color?: string;
  limit?: number;
  cursor?: string;
}

interface PutSkuBody extends Omit<CatalogEntry, 'maxPerUser'> {
  maxPerUser?: number | null;
  initialStock?: number;
}

export interface SkuRouteDeps {
  /** Reads. */
  engine: Engine;
  /** Catalog changes and adjustments. */
  mutations: Mutations;
  cursors: CursorSealer;
  /** Shadow reads against the mirror, when the service runs with one. */
  shadow?: ShadowHook | undefined;
}

function putSkuRoute(app: FastifyInstance, mutations: Mutations): void {
  app.put<{ Params: SkuParams; Body: PutSkuBody }>(
    '/v1/skus/:sku',
    {
      config: {
        role: 'admin',
        honours: ['if-match', 'idempotency-key'],
        errors: [
          'precondition_failed',
          'initial_stock_required',
          'initial_stock_not_allowed',
          'idempotency_key_reused',
        ],
      },
      schema: {
        operationId: 'putSku',
        summary: 'Create or update a catalog entry (creating takes initialStock)',
        description:
          'Replaces the catalog fields (an omitted maxPerUser means no limit). Creating needs initialStock; ' +
          'updating refuses it (stock changes through adjustments). If-Match makes the update conditional.',
        tags: ['skus'],
        params: skuParamsSchema,
        headers: requestHeaders({ idempotencyKey: 'optional', ifMatch: true }),
        body: ref('SkuUpsert'),
        response: {
          200: jsonResponse('Updated', ref('Sku'), { etag: true, replay: true }),
          201: jsonResponse('Created', ref('Sku'), { etag: true, location: true, replay: true }),
        },
      },
    },
    async (request, reply) => {
      const { initialStock, maxPerUser, ...rest } = request.body;
      const result = await mutations.upsert(
        request.params.sku,
        { entry: { ...rest, maxPerUser: maxPerUser ?? null }, initialStock },
        {
          ifMatch: ifMatchOf(request),
          idempotency: optionalIdempotency(request, `PUT /v1/skus/${request.params.sku}`),
        },
      );
      return sendResult(reply, result);
    },
  );
}

function adjustmentRoute(app: FastifyInstance, mutations: Mutations): void {
  app.post<{ Params: SkuParams; Body: { delta: number; reason: string } }>(
    '/v1/skus/:sku/adjustments',
    {
      config: {
        role: 'admin',
        honours: ['if-match', 'idempotency-key'],
        errors: [
          'sku_not_found',
          'adjustment_below_committed',
          'precondition_failed',
          'idempotency_key_required',
          'idempotency_key_reused',
        ],
      },
      schema: {
        operationId: 'adjustStock',
        summary: 'Restock (delta > 0) or write off (delta < 0); never below reserved + sold',
        description:
          'An adjustment is not idempotent by itself (a retried restock would add twice), so it needs an ' +
          'Idempotency-Key: a retry with the same key replays the first answer.',
        tags: ['skus'],
        params: skuParamsSchema,
        headers: requestHeaders({ idempotencyKey: 'required', ifMatch: true }),
        body: ref('Adjustment'),
        response: { 200: jsonResponse('Adjusted', ref('Sku'), { etag: true, replay: true }) },
      },
    },
    async (request, reply) => {
      const idempotency = requiredIdempotency(request, `POST /v1/skus/${request.params.sku}/adjustments`);
      const result = await mutations.adjust(request.params.sku, request.body, {
        ifMatch: ifMatchOf(request),
        idempotency,
      });
      return sendResult(reply, result);
    },
  );
}

export function skuRoutes(app: FastifyInstance, { engine, mutations, cursors, shadow }: SkuRouteDeps): void {
  putSkuRoute(app, mutations);
  adjustmentRoute(app, mutations);

  app.get<{ Params: SkuParams }>(
    '/v1/skus/:sku',
    {
      config: {
        role: 'client',
        honours: ['if-match', 'if-none-match'],
        errors: ['sku_not_found', 'precondition_failed'],
      },
      schema: {
        operationId: 'getSku',
        summary: 'A SKU with its stock ledger',
        tags: ['skus'],
        params: skuParamsSchema,
        headers: requestHeaders({ ifMatch: true, ifNoneMatch: true, canary: true }),
        response: { 200: jsonResponse('The SKU', ref('Sku'), { etag: true }), 304: notModifiedResponse },
      },
    },
    async (request, reply) => {
      const found = engine.getSku(request.params.sku);
      if (found === undefined) throw new HttpProblem('sku_not_found', `no SKU ${request.params.sku}`);
      // Compared with the mirror after this answer; never changes it.
      if (shadow?.wanted(request.headers['x-canary'] === 'shadow')) shadow.sku(request.params.sku);
      return sendVersioned(request, reply, found.version, skuView(found.record, found.version));
    },
  );

  app.get<{ Querystring: SkuQuery }>(
    '/v1/skus',
    {
      config: { role: 'client', errors: ['invalid_cursor'] },
      schema: {
        operationId: 'listSkus',
        summary: 'Catalog query over the (product, size, color, sku) index',
        description:
          'Filters by any of product, size and color. A page holds up to `limit` items; follow nextCursor (with ' +
          'the same filters) until it is null. Cursors are opaque and bound to their filters.',
        tags: ['skus'],
        querystring: listSkusQuerySchema,
        response: { 200: jsonResponse('A page of SKUs', ref('SkuPage')) },
      },
    },
    async (request) => {
      const { cursor, ...query } = request.query;
      const binding = cursorBinding('skus', [query.product, query.size, query.color]);
      return listingPage(
        cursors,
        binding,
        cursor,
        (after) => engine.listSkus({ ...query, after }),
        (item) => skuView(item.record, item.version),
      );
    },
  );
}
