// Order routes: reserve (single and batch), read, list, and the transitions.
import type { FastifyInstance } from 'fastify';
import type { OrderState } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { OperationResult } from '../engine/operations.ts';
import { HttpProblem, problemBody } from '../errors.ts';
import type { Principal } from './auth.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import {
  ifMatchOf,
  optionalIdempotency,
  orProblem,
  requiredReservationIntent,
  reservationIntent,
  sendResult,
} from './request-context.ts';
import {
  batchBodySchema,
  errorResponses as errors,
  idempotentHeadersSchema,
  listOrdersQuerySchema,
  orderBodySchema,
  orderParamsSchema,
  orderViewSchema,
  pageSchema,
} from './schemas.ts';
import { etag, orderView, resourceView } from './views.ts';

interface ReservationBody {
  sku: string;
  qty: number;
  userId: string;
}

interface BatchBody {
  items: (ReservationBody & { idempotencyKey: string })[];
}

interface OrderQuery {
  userId?: string;
  sku?: string;
  state?: OrderState;
  limit?: number;
  cursor?: string;
}

const transitionActions = ['pay', 'ship', 'complete', 'cancel'] as const;

/** Transitions take no body; an empty JSON object is tolerated for clients that always send one. */
function isEmptyBody(body: unknown): boolean {
  return (
    body === undefined ||
    (body !== null && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0)
  );
}

function batchItemResult(result: OperationResult): { status: number; body: unknown } {
  if (result.ok) return { status: result.status, body: resourceView(result.resource, result.version) };
  const problem = problemBody(result.code, result.detail, result.extra);
  return { status: problem.status, body: problem };
}

export function orderRoutes(app: FastifyInstance, engine: Engine): void {
  app.post<{ Body: ReservationBody }>(
    '/v1/orders',
    {
      config: { role: 'client' },
      schema: {
        summary: 'Reserve stock: creates an order in `created` that expires unless paid',
        tags: ['orders'],
        headers: idempotentHeadersSchema,
        body: orderBodySchema,
        response: { 200: orderViewSchema, 201: orderViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const intent = requiredReservationIntent(request);
      const { sku, qty, userId } = request.body;
      return sendResult(reply, await engine.reserve(sku, { qty, userId }, intent));
    },
  );

  app.post<{ Body: BatchBody }>(
    '/v1/orders::batch',
    {
      config: { role: 'client' },
      schema: {
        summary: 'Up to 1000 reservations, each with its own idempotency key; per-item results',
        tags: ['orders'],
        body: batchBodySchema,
        response: {
          200: {
            type: 'object',
            required: ['results'],
            properties: {
              results: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['status', 'body'],
                  properties: { status: { type: 'integer' }, body: {} },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = request.principal as Principal;
      const results = await Promise.all(
        request.body.items.map((item) =>
          engine.reserve(item.sku, item, reservationIntent(principal, item.idempotencyKey)),
        ),
      );
      return { results: results.map(batchItemResult) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      config: { role: 'client' },
      schema: {
        summary: 'An order with its version and state history',
        tags: ['orders'],
        params: orderParamsSchema,
        response: { 200: orderViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const found = orProblem(await engine.getOrder(request.params.id));
      if (found === undefined) throw new HttpProblem('order_not_found', `no order ${request.params.id}`);
      return reply.header('etag', etag(found.version)).send(orderView(found.record, found.version));
    },
  );

  app.get<{ Querystring: OrderQuery }>(
    '/v1/orders',
    {
      config: { role: 'client' },
      schema: {
        summary: 'List orders by user, SKU and state',
        tags: ['orders'],
        querystring: listOrdersQuerySchema,
        response: { 200: pageSchema(orderViewSchema), ...errors },
      },
    },
    async (request) => {
      const { cursor, ...query } = request.query;
      const page = orProblem(await engine.listOrders({ ...query, after: decodeCursor(cursor) }));
      return {
        items: page.items.map((item) => orderView(item.record, item.version)),
        nextCursor: page.next === null ? null : encodeCursor(page.next),
      };
    },
  );

  for (const action of transitionActions) {
    app.post<{ Params: { id: string } }>(
      `/v1/orders/:id/${action}`,
      {
        config: { role: 'client' },
        schema: {
          summary: `Transition: ${action}`,
          tags: ['orders'],
          params: orderParamsSchema,
          headers: idempotentHeadersSchema,
          response: { 200: orderViewSchema, ...errors },
        },
      },
      async (request, reply) => {
        if (!isEmptyBody(request.body)) throw new HttpProblem('validation_failed', `${action} takes no body`);
        const result = await engine.transition(request.params.id, action, {
          ifMatch: ifMatchOf(request),
          idempotency: optionalIdempotency(request, `${action} ${request.params.id}`, null),
        });
        return sendResult(reply, result);
      },
    );
  }
}
