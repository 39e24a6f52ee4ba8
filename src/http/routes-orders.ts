// Order routes: reserve (single and batch), read, list, and the transitions.
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine/engine.ts';
import type { OperationResult } from '../engine/operations.ts';
import { getOrder, listOrders, type OrderQuery } from '../engine/queries.ts';
import { etag } from '../engine/views.ts';
import { HttpProblem, problemBody } from '../errors.ts';
import type { Store } from '../store/contract.ts';
import type { Principal } from './auth.ts';
import {
  idempotencyIntent,
  ifMatchOf,
  optionalIdempotency,
  requiredIdempotency,
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

interface ReservationBody {
  sku: string;
  qty: number;
  userId: string;
}

interface BatchBody {
  items: (ReservationBody & { idempotencyKey: string })[];
}

const transitionActions = ['pay', 'ship', 'complete', 'cancel'] as const;

/** What the fingerprint of a reservation covers, shared by single and batch requests. */
function reservationFingerprintInput({ sku, qty, userId }: ReservationBody): ReservationBody {
  return { sku, qty, userId };
}

/** Transitions take no body; an empty JSON object is tolerated for clients that always send one. */
function isEmptyBody(body: unknown): boolean {
  return (
    body === undefined ||
    (body !== null && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0)
  );
}

function batchItemResult(result: OperationResult): { status: number; body: unknown } {
  if (result.ok) return { status: result.status, body: result.body };
  const problem = problemBody(result.code, result.detail, result.extra);
  return { status: problem.status, body: problem };
}

export function orderRoutes(app: FastifyInstance, engine: Engine, store: Store): void {
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
      const idempotency = requiredIdempotency(request, 'reserve');
      const { sku, qty, userId } = request.body;
      const result = await engine.submit(sku, { kind: 'reserve', qty, userId, idempotency });
      return sendResult(reply, result);
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
          engine.submit(item.sku, {
            kind: 'reserve',
            qty: item.qty,
            userId: item.userId,
            idempotency: idempotencyIntent(
              principal,
              item.idempotencyKey,
              'reserve',
              reservationFingerprintInput(item),
            ),
          }),
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
      const order = await getOrder(store, request.params.id);
      if (order === undefined) throw new HttpProblem('order_not_found', `no order ${request.params.id}`);
      return reply.header('etag', etag(order.version)).send(order);
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
    async (request) => listOrders(store, request.query),
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
        const sku = await engine.orderSku(request.params.id);
        if (sku === undefined) throw new HttpProblem('order_not_found', `no order ${request.params.id}`);
        const result = await engine.submit(sku, {
          kind: 'transition',
          orderId: request.params.id,
          action,
          ifMatch: ifMatchOf(request),
          idempotency: optionalIdempotency(request, `${action} ${request.params.id}`, null),
        });
        return sendResult(reply, result);
      },
    );
  }
}
