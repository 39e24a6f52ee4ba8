// Order routes: reserve (single and batch), read, list, and the transitions.
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../engine/engine.ts';
import type { OperationResult } from '../engine/operations.ts';
import { getOrder, listOrders, type OrderQuery } from '../engine/queries.ts';
import { HttpProblem, problemBody } from '../errors.ts';
import type { Store } from '../store/contract.ts';
import type { Principal } from './auth.ts';
import { type CursorSealer, cursorBinding } from './cursor.ts';
import type { Quotas } from './quota.ts';
import {
  idempotencyIntent,
  ifMatchOf,
  optionalIdempotency,
  requiredIdempotency,
  sendResult,
  sendVersioned,
} from './request-context.ts';
import {
  jsonResponse,
  listOrdersQuerySchema,
  notModifiedResponse,
  orderParamsSchema,
  ref,
  requestHeaders,
} from './schemas.ts';

interface ReservationBody {
  sku: string;
  qty: number;
  userId: string;
}

interface BatchBody {
  items: (ReservationBody & { idempotencyKey: string })[];
}

export interface OrderRouteDeps {
  engine: Engine;
  store: Store;
  cursors: CursorSealer;
  quotas: Quotas;
}

const transitionActions = ['pay', 'ship', 'complete', 'cancel'] as const;

export function orderPath(id: string): string {
  return `/v1/orders/${encodeURIComponent(id)}`;
}

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

const reservationErrors = [
  'sku_not_found',
  'sold_out',
  'insufficient_stock',
  'per_user_limit_exceeded',
  'idempotency_key_required',
  'idempotency_key_reused',
] as const;

function reserveRoute(app: FastifyInstance, { engine, quotas }: OrderRouteDeps): void {
  app.post<{ Body: ReservationBody }>(
    '/v1/orders',
    {
      config: { role: 'client', honours: ['idempotency-key'], errors: [...reservationErrors] },
      schema: {
        operationId: 'reserve',
        summary: 'Reserve stock: creates an order in `created` that expires unless paid',
        description:
          'Needs an Idempotency-Key: a retry with the same key and body replays the first answer (200 or 201 ' +
          'with Idempotent-Replayed). A user may attempt a SKU a bounded number of times a minute (429).',
        tags: ['orders'],
        headers: requestHeaders({ idempotencyKey: 'required' }),
        body: ref('Reservation'),
        response: {
          200: jsonResponse('A replay of an earlier 200', ref('Order'), { etag: true, replay: true }),
          201: jsonResponse('Reserved', ref('Order'), { etag: true, location: true, replay: true }),
        },
      },
    },
    async (request, reply) => {
      const idempotency = requiredIdempotency(request, 'reserve');
      const { sku, qty, userId } = request.body;
      const refused = quotas.admitAttempt(userId, sku);
      if (refused !== undefined) throw refused;
      const result = await engine.submit(sku, { kind: 'reserve', qty, userId, idempotency });
      return sendResult(reply, result, (order) => orderPath(String(order.id)));
    },
  );
}

function batchRoute(app: FastifyInstance, { engine, quotas }: OrderRouteDeps): void {
  app.post<{ Body: BatchBody }>(
    '/v1/orders::batch',
    {
      config: { role: 'client', errors: [] },
      schema: {
        operationId: 'reserveBatch',
        summary: 'Up to 1000 reservations, each with its own idempotency key; per-item results',
        description:
          'Each item is decided as POST /v1/orders would decide it, with its own idempotencyKey (the ' +
          'Idempotency-Key header is refused here). The answer is 200 with one result per item, in order.',
        tags: ['orders'],
        body: ref('BatchRequest'),
        response: { 200: jsonResponse('One result per item', ref('BatchResults')) },
      },
    },
    async (request) => {
      const principal = request.principal as Principal;
      const results = await Promise.all(
        request.body.items.map(async (item): Promise<OperationResult> => {
          const refused = quotas.admitAttempt(item.userId, item.sku);
          if (refused !== undefined)
            return { ok: false, code: refused.code, detail: refused.detail, extra: refused.extra };
          return engine.submit(item.sku, {
            kind: 'reserve',
            qty: item.qty,
            userId: item.userId,
            idempotency: idempotencyIntent(
              principal,
              item.idempotencyKey,
              'reserve',
              reservationFingerprintInput(item),
            ),
          });
        }),
      );
      return { results: results.map(batchItemResult) };
    },
  );
}

function readRoutes(app: FastifyInstance, { store, cursors }: OrderRouteDeps): void {
  app.get<{ Params: { id: string } }>(
    '/v1/orders/:id',
    {
      config: {
        role: 'client',
        honours: ['if-match', 'if-none-match'],
        errors: ['order_not_found', 'precondition_failed'],
      },
      schema: {
        operationId: 'getOrder',
        summary: 'An order with its version and state history',
        tags: ['orders'],
        params: orderParamsSchema,
        headers: requestHeaders({ ifMatch: true, ifNoneMatch: true }),
        response: { 200: jsonResponse('The order', ref('Order'), { etag: true }), 304: notModifiedResponse },
      },
    },
    async (request, reply) => {
      const order = await getOrder(store, request.params.id);
      if (order === undefined) throw new HttpProblem('order_not_found', `no order ${request.params.id}`);
      return sendVersioned(request, reply, order);
    },
  );

  app.get<{ Querystring: OrderQuery }>(
    '/v1/orders',
    {
      config: { role: 'client', errors: ['invalid_cursor'] },
      schema: {
        operationId: 'listOrders',
        summary: 'List orders by user, SKU and state',
        description:
          "Any client key may list any user's orders (client keys belong to server-side integrations). " +
          'Follow nextCursor (with the same filters) until it is null; cursors are opaque and bound to their filters.',
        tags: ['orders'],
        querystring: listOrdersQuerySchema,
        response: { 200: jsonResponse('A page of orders', ref('OrderPage')) },
      },
    },
    async (request) => {
      const { userId, sku, state, cursor } = request.query;
      const binding = cursorBinding('orders', [userId, sku, state]);
      const page = await listOrders(store, {
        ...request.query,
        cursor: cursor === undefined ? undefined : cursors.unseal(cursor, binding),
      });
      return {
        items: page.items,
        nextCursor: page.nextCursor === null ? null : cursors.seal(page.nextCursor, binding),
      };
    },
  );
}

function transitionRoutes(app: FastifyInstance, { engine }: OrderRouteDeps): void {
  for (const action of transitionActions) {
    app.post<{ Params: { id: string } }>(
      `/v1/orders/:id/${action}`,
      {
        config: {
          role: 'client',
          honours: ['if-match', 'idempotency-key'],
          errors: [
            'order_not_found',
            'illegal_transition',
            'reservation_expired',
            'precondition_failed',
            'idempotency_key_reused',
          ],
        },
        schema: {
          operationId: `${action}Order`,
          summary: `Transition: ${action}`,
          description:
            'Takes no body (an empty JSON object is tolerated). 409 illegal_transition names the current state.',
          tags: ['orders'],
          params: orderParamsSchema,
          headers: requestHeaders({ idempotencyKey: 'optional', ifMatch: true }),
          response: { 200: jsonResponse('The order after the transition', ref('Order'), { etag: true, replay: true }) },
        },
      },
      async (request, reply) => {
        if (!isEmptyBody(request.body)) {
          throw new HttpProblem('validation_failed', `${action} takes no body (or an empty JSON object {})`, {
            errors: [{ location: 'body', pointer: '', message: 'must be absent or {}' }],
          });
        }
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

export function orderRoutes(app: FastifyInstance, deps: OrderRouteDeps): void {
  reserveRoute(app, deps);
  batchRoute(app, deps);
  readRoutes(app, deps);
  transitionRoutes(app, deps);
}
