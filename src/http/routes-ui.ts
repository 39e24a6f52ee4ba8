// GET /ui: the operator page, plain static files (src/ui/) read once at start
// and served from memory. No key is needed to load the page and none is in
// it: the operator types a client key, which the page keeps in memory and
// sends only as an Authorization header (see src/ui/app.js).
//
// The files are a fixed list, not a directory lookup, so no request path can
// reach anything else on disk.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const uiDir = new URL('../ui/', import.meta.url);

const files = [
  {
    path: '/ui',
    file: 'index.html',
    type: 'text/html; charset=utf-8',
    summary: 'Operator page: live stock, rates, breaker and shedding',
    operationId: 'uiPage',
  },
  {
    path: '/ui/app.js',
    file: 'app.js',
    type: 'text/javascript; charset=utf-8',
    summary: 'Operator page script',
    operationId: 'uiScript',
  },
  {
    path: '/ui/style.css',
    file: 'style.css',
    type: 'text/css; charset=utf-8',
    summary: 'Operator page style',
    operationId: 'uiStyle',
  },
] as const;

/**
 * The page may talk to this origin only, run only its own script and style,
 * and may not be framed (so no other site can overlay the key field).
 */
const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Small files: revalidated each load, so an upgrade shows at once.
  'cache-control': 'no-cache',
} as const;

export function uiRoutes(app: FastifyInstance): void {
  for (const { path, file, type, summary, operationId } of files) {
    const body = readFileSync(new URL(file, uiDir));
    const media = type.split(';')[0]!;
    app.get(
      path,
      {
        config: { role: 'none', errors: [] },
        schema: {
          operationId,
          summary,
          tags: ['ops'],
          response: { 200: { description: summary, content: { [media]: { schema: { type: 'string' } } } } },
        },
      },
      async (_request, reply) => reply.type(type).headers(securityHeaders).send(body),
    );
  }
}
