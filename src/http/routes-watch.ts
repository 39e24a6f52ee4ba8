// GET /v1/watch: live stock as Server-Sent Events (DESIGN.md). The stream is
// a raw, close-delimited HTTP/1.1 body (no chunked framing), so the hub
// writes the same event bytes to every socket; see src/watch/hub.ts.
//
// CORS: any origin may subscribe (`Access-Control-Allow-Origin: *`, no
// cookies). A browser EventSource cannot send Authorization, so a storefront
// either runs the service with --watch-public (stock levels need no key) or
// uses a fetch-based SSE client that sends the Bearer header (allowed by the
// preflight below).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { idLengthMax, watchEventIdDigitsMax, watchSkusMax } from '../constants.ts';
import { HttpProblem } from '../errors.ts';
import { productFilter, skusFilter, type WatchFilter } from '../watch/filter.ts';
import type { WatchHub } from '../watch/hub.ts';
import { errorResponses, labelSchema } from './schemas.ts';

interface WatchQuery {
  sku?: string;
  product?: string;
  lastEventId?: string;
}

const eventIdPattern = new RegExp(`^[0-9]{1,${watchEventIdDigitsMax}}$`);
const skuIdPattern = /^[^\p{C}\p{Z}]+$/u;

const watchQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sku: {
      type: 'string',
      minLength: 1,
      maxLength: watchSkusMax * (idLengthMax + 1),
      description: `comma-separated SKU ids (at most ${watchSkusMax})`,
    },
    product: { ...labelSchema, description: 'every SKU of this product, including ones added later' },
    lastEventId: {
      type: 'string',
      description: 'resume after this revision (for clients that cannot send the Last-Event-ID header)',
    },
  },
} as const;

const corsHeaders = { 'access-control-allow-origin': '*' } as const;
const preflightHeaders = {
  ...corsHeaders,
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'authorization, last-event-id, cache-control',
  'access-control-max-age': '600',
} as const;

/** `Connection: close` and no Content-Length or Transfer-Encoding: the body runs until the socket closes. */
const streamHeaders = {
  ...corsHeaders,
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  connection: 'close',
  // Reverse proxies (nginx) must pass events through as they come.
  'x-accel-buffering': 'no',
} as const;

function watchFilter(query: WatchQuery, hub: WatchHub): WatchFilter {
  if ((query.sku === undefined) === (query.product === undefined)) {
    throw new HttpProblem('invalid_watch_filter', 'give exactly one of ?sku=a,b or ?product=p');
  }
  if (query.product !== undefined) {
    const size = hub.productSize(query.product);
    if (size === 0) throw new HttpProblem('sku_not_found', `no SKU has product ${query.product}`);
    if (size > watchSkusMax) {
      throw new HttpProblem(
        'invalid_watch_filter',
        `product ${query.product} has ${size} SKUs; a watch follows at most ${watchSkusMax} (name them with ?sku=)`,
      );
    }
    return productFilter(query.product);
  }
  const skus = (query.sku as string).split(',');
  for (const sku of skus) {
    if (sku.length === 0 || sku.length > idLengthMax || !skuIdPattern.test(sku)) {
      throw new HttpProblem(
        'invalid_watch_filter',
        `?sku= takes comma-separated SKU ids of 1-${idLengthMax} printable characters; got ${JSON.stringify(sku)}`,
      );
    }
  }
  const filter = skusFilter(skus);
  if (filter.kind === 'skus' && filter.skus.size > watchSkusMax) {
    throw new HttpProblem('invalid_watch_filter', `a watch follows at most ${watchSkusMax} SKUs`);
  }
  const unknown = hub.unknownSkus(filter.kind === 'skus' ? filter.skus : []);
  if (unknown.length > 0) {
    throw new HttpProblem('sku_not_found', `no SKU ${unknown.slice(0, 10).join(', ')}`, { unknownSkus: unknown });
  }
  return filter;
}

/** The revision to resume after: the Last-Event-ID header (what EventSource sends on reconnect), else ?lastEventId=. */
function lastEventIdOf(header: string | string[] | undefined, query: string | undefined): number | undefined {
  const value = header ?? query;
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const revision = Number(text);
  if (!eventIdPattern.test(text) || !Number.isSafeInteger(revision)) {
    throw new HttpProblem(
      'invalid_last_event_id',
      `Last-Event-ID must be a revision (digits), got ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  return revision;
}

export function watchRoutes(app: FastifyInstance, hub: WatchHub, watchPublic: boolean): void {
  const addCors = async (_request: unknown, reply: FastifyReply, payload: unknown) => {
    reply.headers(corsHeaders);
    return payload;
  };

  app.options(
    '/v1/watch',
    { config: { role: 'none' }, schema: { summary: 'CORS preflight for /v1/watch', tags: ['watch'], security: [] } },
    async (_request, reply) => reply.code(204).headers(preflightHeaders).send(),
  );

  app.get<{ Querystring: WatchQuery }>(
    '/v1/watch',
    {
      config: { role: watchPublic ? 'none' : 'client' },
      onSend: addCors,
      schema: {
        summary:
          'Live stock as Server-Sent Events: a snapshot, then a `stock` event per committed change (id = store revision); resumable with Last-Event-ID',
        tags: ['watch'],
        ...(watchPublic ? { security: [] } : {}),
        querystring: watchQuerySchema,
        headers: {
          type: 'object',
          properties: { 'last-event-id': { type: 'string', maxLength: 64 } },
        },
        response: {
          200: {
            description:
              'text/event-stream: `snapshot`, then `stock` events {sku,total,reserved,sold,available,version,revision}; `resync` when history cannot cover Last-Event-ID; `disconnect` {reason} before the server ends the stream',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const filter = watchFilter(request.query, hub);
      const lastEventId = lastEventIdOf(request.headers['last-event-id'], request.query.lastEventId);
      if (!hub.accepting) throw new HttpProblem('not_ready', 'the service is shutting down');
      if (hub.full) {
        throw new HttpProblem('watch_full', `${hub.subscriberCount} of ${hub.subscribersMax} watchers are connected`);
      }
      if (request.method === 'HEAD') return reply.code(200).headers(streamHeaders).send();
      reply.hijack();
      const response = reply.raw;
      response.removeHeader('transfer-encoding');
      response.writeHead(200, streamHeaders);
      response.flushHeaders();
      hub.subscribe(request.raw.socket, filter, lastEventId);
      return reply;
    },
  );
}
