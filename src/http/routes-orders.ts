// Order routes: reserve (single and batch), read, list, and the transitions.
import type { FastifyInstance } from 'fastify';
import { transitionActions } from '../domain/order-state.ts';
import type { OrderState } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { Mutations } from '../engine/mutations.ts';
import type { OperationResult } from '../engine/operations.ts';
import { HttpProblem, problemBody } from '../errors.ts';
import type { Principal } from './auth.ts';
import { type CursorSealer, cursorBinding, listingPage } from './cursor.ts';
import type { Quotas } from './quota.ts';
import {
  ifMatchOf,
  optionalIdempotency,
  orProblem,
  requiredReservationIntent,
  reservationIntent,
  sendResult,
  sendVersioned,
} from './request-context.ts';
import type { ShadowHook } from './routes-cutover.ts';
import {
  jsonResponse,
  listOrdersQuerySchema,
  notModifiedResponse,
  orderParamsSchema,
  ref,
  requestHeaders,
} from './schemas.ts';
import { orderView, resourceView } from './views.ts';

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

export interface OrderRouteDeps {
  /** Reads. */
  engine: Engine;
  /** Reservations and transitions. */
  mutations: Mutations;
  cursors: CursorSealer;
  quotas: Quotas;
  /** Shadow reads against the mirror, when the service runs with one. */
  shadow?: ShadowHook | undefined;
}

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

const reservationErrors = [
  'sku_not_found',
  'sold_out',
  'insufficient_stock',
  'per_user_limit_exceeded',
  'idempotency_key_required',
  'idempotency_key_reused',
] as const;

function reserveRoute(app: FastifyInstance, { mutations, quotas }: OrderRouteDeps): void {
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
      const intent = requiredReservationIntent(request);
      const { sku, qty, userId } = request.body;
      const refused = quotas.admitAttempt(userId, sku);
      if (refused !== undefined) throw refused;
      return sendResult(reply, await mutations.reserve(sku, { qty, userId }, intent));
    },
  );
}

function batchRoute(app: FastifyInstance, { mutations, quotas }: OrderRouteDeps): void {
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
    async (request, reply) => {
      const principal = request.principal as Principal;
      const results = await Promise.all(
        request.body.items.map(async (item): Promise<OperationResult> => {
          const refused = quotas.admitAttempt(item.userId, item.sku);
          if (refused !== undefined)
            return { ok: false, code: refused.code, detail: refused.detail, extra: refused.extra };
          return mutations.reserve(item.sku, item, reservationIntent(principal, item.idempotencyKey));
        }),
      );
      // Serialized here: the schema's per-item choice (an order or a problem) would make the serializer
      // validate every item against both branches, which costs more than the reservations' own JSON.
      return reply
        .type('application/json; charset=utf-8')
        .send(JSON.stringify({ results: results.map(batchItemResult) }));
    },
  );
}

function readRoutes(app: FastifyInstance, { engine, cursors, shadow }: OrderRouteDeps): void {
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
        headers: requestHeaders({ ifMatch: true, ifNoneMatch: true, canary: true }),
        response: { 200: jsonResponse('The order', ref('Order'), { etag: true }), 304: notModifiedResponse },
      },
    },
    async (request, reply) => {
      const found = orProblem(await engine.getOrder(request.params.id));
      if (found === undefined) throw new HttpProblem('order_not_found', `no order ${request.params.id}`);
      // Compared with the mirror after this answer; never changes it.
      if (shadow?.wanted(request.headers['x-canary'] === 'shadow')) shadow.order(request.params.id);
      return sendVersioned(request, reply, found.version, orderView(found.record, found.version));
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
      const { cursor, ...query } = request.query;
      const binding = cursorBinding('orders', [query.userId, query.sku, query.state]);
      return listingPage(
        cursors,
        binding,
        cursor,
        (after) => engine.listOrders({ ...query, after }),
        (item) => orderView(item.record, item.version),
      );
    },
  );
}

function transitionRoutes(app: FastifyInstance, { mutations }: OrderRouteDeps): void {
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
        const result = await mutations.transition(request.params.id, action, {
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
