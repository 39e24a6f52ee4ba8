// GET /v1/watch: live stock as Server-Sent Events (docs/api.md). The stream is
// a raw, close-delimited HTTP/1.1 body (no chunked framing), so the hub
// writes the same event bytes to every socket; see src/watch/hub.ts.
//
// CORS: any origin may subscribe (`Access-Control-Allow-Origin: *`, no
// cookies). A browser EventSource cannot send Authorization, so a storefront
// either runs the service with --watch-public (stock levels need no key) or
// uses a fetch-based SSE client that sends the Bearer header (allowed by the
// preflight below).
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { idLengthMax, watchEventIdDigitsMax, watchSkuParamLengthMax, watchSkusMax } from '../constants.ts';
import { type ErrorCode, HttpProblem } from '../errors.ts';
import { productFilter, skusFilter, type WatchFilter } from '../watch/filter.ts';
import type { WatchHub } from '../watch/hub.ts';
import { validationProblem } from './problem.ts';
import { labelSchema } from './schemas.ts';

interface WatchQuery {
  sku?: string;
  product?: string;
  lastEventId?: string;
}

const eventIdPattern = new RegExp(`^[0-9]{1,${watchEventIdDigitsMax}}$`);
const skuIdPattern = /^[^\p{C}\p{Z}]+$/u;

const revisionSchema = {
  type: 'string',
  pattern: `^[0-9]{1,${watchEventIdDigitsMax}}$`,
  description: `a store revision: 1 to ${watchEventIdDigitsMax} digits`,
} as const;

const watchQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sku: {
      type: 'string',
      minLength: 1,
      maxLength: watchSkuParamLengthMax,
      pattern: '^[^\\p{C}\\p{Z}]+$',
      description: `comma-separated SKU ids (at most ${watchSkusMax}, each 1 to ${idLengthMax} printable characters); exactly one of sku or product`,
    },
    product: {
      ...labelSchema,
      description: `every SKU of this product, including ones added later (at most ${watchSkusMax}); exactly one of sku or product`,
    },
    lastEventId: {
      ...revisionSchema,
      description: `resume after this revision (${watchEventIdDigitsMax} digits at most), for clients that cannot send Last-Event-ID`,
    },
  },
} as const;

/** Field-specific refusals keep the watch's own codes; anything else is validation_failed. */
function watchValidationProblem(error: FastifyError): HttpProblem {
  const issue = error.validation?.[0];
  const field = `${error.validationContext}${issue?.instancePath ?? ''}`;
  let code: ErrorCode = 'validation_failed';
  if (field === 'querystring/lastEventId' || field === 'headers/last-event-id') code = 'invalid_last_event_id';
  else if ((field === 'querystring/sku' || field === 'querystring/product') && issue?.keyword === 'pattern') {
    code = 'invalid_watch_filter';
  }
  return validationProblem(error, code);
}

const corsHeaders = { 'access-control-allow-origin': '*' } as const;
const preflightHeaders = {
  ...corsHeaders,
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'authorization, last-event-id, cache-control',
  'access-control-max-age': '600',
} as const;

const watchDescription = [
  'Give exactly one of `sku` (a comma-separated list) or `product`. An unknown SKU, or a product with no SKU, is',
  '404 sku_not_found (listing unknownSkus). The stream starts with `retry: 1000`, then a `snapshot` event',
  '({revision, skus: [...]}, id = the revision), then one `stock` event per committed change',
  '({sku, total, reserved, sold, available, version, revision}, id = its revision), in revision order.',
  'Lines starting with `:` are heartbeats. Reconnect with Last-Event-ID (or ?lastEventId=) to resume: the',
  'changes after that revision if this server still holds them, else a `resync` event (a fresh snapshot with',
  'reason history_expired or unknown_revision). Before the server ends a stream it sends `disconnect`',
  '({reason: lagging, stalled or shutdown}). Needs a client key unless the server runs with --watch-public.',
  'Responses carry Access-Control-Allow-Origin: *; OPTIONS answers the CORS preflight with 204.',
].join(' ');

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
    {
      config: { role: 'none', errors: [] },
      schema: {
        operationId: 'watchPreflight',
        summary: 'CORS preflight for /v1/watch',
        tags: ['watch'],
        response: {
          204: {
            description: 'No Content: the methods and headers a cross-origin watch may use',
            type: 'null',
            headers: {
              'Access-Control-Allow-Origin': { type: 'string', enum: ['*'] },
              'Access-Control-Allow-Methods': { type: 'string' },
              'Access-Control-Allow-Headers': { type: 'string' },
              'Access-Control-Max-Age': { type: 'string' },
            },
          },
        },
      },
    },
    async (_request, reply) => reply.code(204).headers(preflightHeaders).send(),
  );

  app.get<{ Querystring: WatchQuery }>(
    '/v1/watch',
    {
      config: {
        role: watchPublic ? 'none' : 'client',
        errors: ['invalid_watch_filter', 'invalid_last_event_id', 'sku_not_found', 'validation_failed', 'watch_full'],
      },
      onSend: addCors,
      attachValidation: true,
      schema: {
        operationId: 'watchStock',
        summary: 'Live stock as Server-Sent Events',
        description: watchDescription,
        tags: ['watch'],
        querystring: watchQuerySchema,
        headers: {
          type: 'object',
          properties: {
            'last-event-id': { ...revisionSchema, description: 'resume after this revision (EventSource sends it)' },
          },
        },
        response: {
          200: {
            description:
              'A text/event-stream that runs until either side closes it (HTTP/1.1, Connection: close, no length)',
            headers: { 'Access-Control-Allow-Origin': { type: 'string', enum: ['*'] } },
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (request, reply) => {
      if (request.validationError) throw watchValidationProblem(request.validationError as FastifyError);
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
