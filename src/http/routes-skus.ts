// Catalog and stock routes: PUT/GET a SKU, list the catalog, adjust stock.
import type { FastifyInstance } from 'fastify';
import type { CatalogEntry } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import { listSkus, type SkuQuery } from '../engine/queries.ts';
import { etag } from '../engine/views.ts';
import { HttpProblem } from '../errors.ts';
import type { Store } from '../store/contract.ts';
import { ifMatchOf, optionalIdempotency, sendResult } from './request-context.ts';
import {
  adjustmentBodySchema,
  errorResponses as errors,
  idempotentHeadersSchema,
  listSkusQuerySchema,
  pageSchema,
  putSkuBodySchema,
  skuParamsSchema,
  skuViewSchema,
} from './schemas.ts';

interface SkuParams {
  sku: string;
}

interface PutSkuBody extends Omit<CatalogEntry, 'maxPerUser'> {
  maxPerUser?: number | null;
  initialStock?: number;
}

export function skuRoutes(app: FastifyInstance, engine: Engine, store: Store): void {
  app.put<{ Params: SkuParams; Body: PutSkuBody }>(
    '/v1/skus/:sku',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Create or update a catalog entry (creating takes initialStock)',
        tags: ['skus'],
        params: skuParamsSchema,
        headers: idempotentHeadersSchema,
        body: putSkuBodySchema,
        response: { 200: skuViewSchema, 201: skuViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { initialStock, maxPerUser, ...rest } = request.body;
      const result = await engine.submit(request.params.sku, {
        kind: 'upsert',
        entry: { ...rest, maxPerUser: maxPerUser ?? null },
        initialStock,
        ifMatch: ifMatchOf(request),
        idempotency: optionalIdempotency(request, `PUT /v1/skus/${request.params.sku}`),
      });
      return sendResult(reply, result);
    },
  );

  app.post<{ Params: SkuParams; Body: { delta: number; reason: string } }>(
    '/v1/skus/:sku/adjustments',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Restock (delta > 0) or write off (delta < 0); never below reserved + sold',
        tags: ['skus'],
        params: skuParamsSchema,
        headers: idempotentHeadersSchema,
        body: adjustmentBodySchema,
        response: { 200: skuViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const result = await engine.submit(request.params.sku, {
        kind: 'adjust',
        delta: request.body.delta,
        reason: request.body.reason,
        ifMatch: ifMatchOf(request),
        idempotency: optionalIdempotency(request, `POST /v1/skus/${request.params.sku}/adjustments`),
      });
      return sendResult(reply, result);
    },
  );

  app.get<{ Params: SkuParams }>(
    '/v1/skus/:sku',
    {
      config: { role: 'client' },
      schema: {
        summary: 'A SKU with its stock ledger',
        tags: ['skus'],
        params: skuParamsSchema,
        response: { 200: skuViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const view = engine.getSku(request.params.sku);
      if (view === undefined) throw new HttpProblem('sku_not_found', `no SKU ${request.params.sku}`);
      return reply.header('etag', etag(view.version)).send(view);
    },
  );

  app.get<{ Querystring: SkuQuery }>(
    '/v1/skus',
    {
      config: { role: 'client' },
      schema: {
        summary: 'Catalog query over the (product, size, color, sku) index',
        tags: ['skus'],
        querystring: listSkusQuerySchema,
        response: { 200: pageSchema(skuViewSchema), ...errors },
      },
    },
    async (request) => listSkus(store, engine, request.query),
  );
}
