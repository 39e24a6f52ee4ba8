// The OpenAPI 3.1 document at /docs/json (browsable at /docs), generated from
// the routes: their schemas give the operations, parameters and success
// responses; their config gives security (none for `role: 'none'`) and the
// error codes each can answer, which become one problem+json response per
// status listing exactly those codes. Codes every route of a kind can answer
// (a bad key, a malformed request, shutdown) are added here, once.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { type ErrorCode, errorCatalogue } from '../errors.ts';
import { problemContentType } from './problem.ts';
import { namedSchemas } from './schemas.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Error codes this route answers besides those every route of its kind answers (see impliedErrors). */
    errors?: readonly ErrorCode[];
  }
}

const apiDescription = [
  'Flash-sale inventory and orders, API v1. The whole contract, with its rules for idempotency, preconditions,',
  'quotas and the trust model, is docs/api.md in the repository.',
  '',
  'Every error is application/problem+json {type, title, status, code, detail} with a stable snake_case code;',
  'each operation lists the codes it can answer under each status. A path not listed here answers 404',
  'not_found; a method a listed path does not take answers 405 method_not_allowed with an Allow header.',
  'Requests the HTTP parser cannot read answer 400 bad_request, or 431 header_fields_too_large.',
].join('\n');

/** Codes every route can answer: a malformed request or URI, a shutdown, a defect. */
const everyRoute: readonly ErrorCode[] = [
  'bad_request',
  'unsupported_header',
  'uri_too_long',
  'header_fields_too_large',
  'not_ready',
  'internal_error',
];

/** Codes implied by what the route takes: a key, a body, parameters, a trip to the engine. */
function impliedErrors(route: RouteOptions): ErrorCode[] {
  const role = route.config?.role ?? 'none';
  const methods = [route.method].flat();
  const schema = route.schema ?? {};
  const codes: ErrorCode[] = [...everyRoute];
  if (role !== 'none') codes.push('unauthorized', 'rate_limited');
  if (role === 'admin') codes.push('forbidden');
  // Fastify reads a body on every method but GET and HEAD (an OPTIONS may carry one too).
  if (methods.some((method) => method !== 'GET' && method !== 'HEAD')) {
    codes.push('invalid_json', 'payload_too_large', 'unsupported_media_type');
  }
  if (methods.includes('POST') || methods.includes('PUT')) codes.push('validation_failed', 'overloaded');
  if (schema.params !== undefined || schema.querystring !== undefined || schema.headers !== undefined) {
    codes.push('validation_failed');
  }
  if (methods.includes('POST') || methods.includes('PUT')) {
    codes.push('store_unavailable', 'backend_unavailable', 'backend_no_space', 'owner_unavailable');
  }
  return codes;
}

const retryAfter = { type: 'string', description: 'seconds to wait before retrying' } as const;

function headersFor(status: number) {
  if (status === 401) return { 'WWW-Authenticate': { type: 'string', enum: ['Bearer'] } };
  if (status === 503) return { 'Retry-After': retryAfter };
  if (status === 429) {
    return {
      'Retry-After': retryAfter,
      'RateLimit-Policy': { type: 'string', description: 'the policy, e.g. "client_quota";q=100;w=1' },
      RateLimit: { type: 'string', description: 'what is left of it, e.g. "client_quota";r=0;t=1' },
    };
  }
  return undefined;
}

/** One problem+json response per status, listing the codes the route answers with it. */
export function problemResponses(codes: readonly ErrorCode[]): Record<number, object> {
  const byStatus = new Map<number, Set<ErrorCode>>();
  for (const code of codes) {
    const status = errorCatalogue[code].status;
    byStatus.set(status, (byStatus.get(status) ?? new Set()).add(code));
  }
  const responses: Record<number, object> = {};
  for (const [status, set] of [...byStatus].sort(([a], [b]) => a - b)) {
    const listed = [...set].sort();
    const headers = headersFor(status);
    responses[status] = {
      description: listed.map((code) => `${code}: ${errorCatalogue[code].title}`).join('; '),
      ...(headers ? { headers } : {}),
      content: {
        [problemContentType]: {
          schema: {
            allOf: [{ $ref: 'Problem#' }],
            properties: { status: { const: status }, code: { enum: listed } },
          },
        },
      },
    };
  }
  return responses;
}

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  for (const schema of namedSchemas) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'hotstock API', version: '1.0.0', description: apiDescription },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key' } } },
      security: [{ bearer: [] }],
    },
    // Named schemas keep their names: #/components/schemas/Sku, not def-0.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transform: ({ schema, url, route }) => {
      const role = route.config?.role ?? 'none';
      const codes = [...new Set([...impliedErrors(route), ...(route.config?.errors ?? [])])];
      return {
        schema: {
          ...schema,
          ...(role === 'none' ? { security: [] } : {}),
          response: { ...(schema?.response as object), ...problemResponses(codes) },
        },
        url,
      };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
