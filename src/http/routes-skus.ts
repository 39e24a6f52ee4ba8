// Catalog and stock routes: PUT/GET a SKU, list the catalog, adjust stock.
import type { FastifyInstance } from 'fastify';
import type { CatalogEntry } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import { HttpProblem } from '../errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { ifMatchOf, optionalIdempotency, orProblem, sendResult } from './request-context.ts';
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
import { etag, skuView } from './views.ts';

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

export function skuRoutes(app: FastifyInstance, engine: Engine): void {
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
      const result = await engine.upsert(
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
      const result = await engine.adjust(request.params.sku, request.body, {
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
      const found = engine.getSku(request.params.sku);
      if (found === undefined) throw new HttpProblem('sku_not_found', `no SKU ${request.params.sku}`);
      return reply.header('etag', etag(found.version)).send(skuView(found.record, found.version));
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
    async (request) => {
      const { cursor, ...query } = request.query;
      const page = orProblem(await engine.listSkus({ ...query, after: decodeCursor(cursor) }));
      return {
        items: page.items.map((item) => skuView(item.record, item.version)),
        nextCursor: page.next === null ? null : encodeCursor(page.next),
      };
    },
  );
}
