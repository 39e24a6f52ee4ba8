// Admin routes of the cutover between stores: the routing table with the
// mirror's lag, moves (start one, follow it), and the shadow reads' last
// mismatches. What they show and do is the cutover's (cutover/admin.ts).
import type { FastifyInstance } from 'fastify';
import { listLimitMax } from '../constants.ts';
import type { CutoverAdmin } from '../cutover/admin.ts';
import type { MoveRequest } from '../cutover/moves.ts';
import { HttpProblem } from '../errors.ts';
import { type CursorSealer, cursorBinding } from './cursor.ts';
import { orProblem } from './request-context.ts';
import { jsonResponse, moveParamsSchema, ref, routingQuerySchema } from './schemas.ts';

/** The shadow reads as the read routes use them: whether to compare a read, and starting one. */
export interface ShadowHook {
  wanted(asked: boolean): boolean;
  sku(skuId: string): void;
  order(orderId: string): void;
}

const routingBinding = cursorBinding('routing', []);
/** An operator reads the table whole more often than not: the largest page unless asked. */
const routingLimitDefault = listLimitMax;

function routingRoute(app: FastifyInstance, cutover: CutoverAdmin, cursors: CursorSealer): void {
  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/v1/admin/routing',
    {
      config: { role: 'admin', errors: ['invalid_cursor'] },
      schema: {
        operationId: 'getRouting',
        summary: 'Each SKU with its authoritative store, and the lag of each mirror direction',
        description:
          'SKUs in id order, a page at a time (follow nextCursor). Each SKU shows the lag of the mirror its ' +
          'store feeds. Without --mirror every SKU is on the one store.',
        tags: ['admin'],
        querystring: routingQuerySchema,
        response: { 200: jsonResponse('The routing table', ref('RoutingTable')) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const after = cursor === undefined ? undefined : cursors.unseal(cursor, routingBinding);
      const { next, ...page } = cutover.routing({ limit: limit ?? routingLimitDefault, after });
      return { ...page, nextCursor: next === null ? null : cursors.seal(next, routingBinding) };
    },
  );
}

function moveRoutes(app: FastifyInstance, cutover: CutoverAdmin): void {
  app.post<{ Body: MoveRequest }>(
    '/v1/admin/routing/moves',
    {
      config: {
        role: 'admin',
        errors: ['sku_not_found', 'mirror_not_configured', 'mirror_not_ready', 'move_queue_full'],
      },
      schema: {
        operationId: 'startMove',
        summary: 'Move SKUs to the other store: named ones, a product, or a share of the catalog',
        description:
          'Answers at once with the move, pending; follow it at /v1/admin/routing/moves/{id} until done (every ' +
          'SKU moved) or failed (rolled back: every SKU where it was). Requests for a SKU being moved wait; ' +
          'they are not failed. Rolling back is a move the other way.',
        tags: ['admin'],
        body: ref('MoveRequest'),
        response: { 202: jsonResponse('The move, accepted', ref('Move'), { location: true }) },
      },
    },
    async (request, reply) => {
      const move = orProblem(await cutover.createMove(request.body));
      reply.code(202).header('location', `/v1/admin/routing/moves/${encodeURIComponent(move.id)}`);
      return move;
    },
  );

  app.get(
    '/v1/admin/routing/moves',
    {
      config: { role: 'admin', errors: [] },
      schema: {
        operationId: 'listMoves',
        summary: 'Every move this instance keeps, newest first',
        tags: ['admin'],
        response: { 200: jsonResponse('The moves', ref('MoveList')) },
      },
    },
    async () => ({ items: cutover.moves() }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/admin/routing/moves/:id',
    {
      config: { role: 'admin', errors: ['move_not_found'] },
      schema: {
        operationId: 'getMove',
        summary: 'A move: pending, moving, rolling_back, then done or failed',
        tags: ['admin'],
        params: moveParamsSchema,
        response: { 200: jsonResponse('The move', ref('Move')) },
      },
    },
    async (request) => {
      const move = cutover.move(request.params.id);
      if (move === undefined) throw new HttpProblem('move_not_found', `no move ${request.params.id}`);
      return move;
    },
  );
}

export function cutoverRoutes(app: FastifyInstance, cutover: CutoverAdmin, cursors: CursorSealer): void {
  routingRoute(app, cutover, cursors);
  moveRoutes(app, cutover);
  app.get(
    '/v1/admin/shadow/mismatches',
    {
      config: { role: 'admin', errors: [] },
      schema: {
        operationId: 'shadowMismatches',
        summary: 'The last records a shadow read found different on the mirror, with both values',
        tags: ['admin'],
        response: { 200: jsonResponse('The last mismatches', ref('ShadowMismatches')) },
      },
    },
    async () => ({ items: cutover.mismatches() }),
  );
}
