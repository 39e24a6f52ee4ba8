// Turning HTTP request details into engine inputs: idempotency intents
// (scoped per API key, fingerprinted over what the request asks for) and
// If-Match versions.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyIntent, IfMatch, OperationResult } from '../engine/operations.ts';
import { etag } from '../engine/views.ts';
import { HttpProblem } from '../errors.ts';
import { keys } from '../store/keys.ts';
import type { Principal } from './auth.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    role?: import('./auth.ts').RouteRole;
  }
}

/** JSON with object keys sorted, so two spellings of the same request fingerprint alike. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function idempotencyIntent(principal: Principal, key: string, what: string, body: unknown): IdempotencyIntent {
  const fingerprint = createHash('sha256')
    .update(what)
    .update('\n')
    .update(canonical(body ?? null))
    .digest('base64url');
  return { storeKey: keys.idempotency(principal.scope, key), fingerprint };
}

/**
 * The request's idempotency intent, if it sent an Idempotency-Key header.
 * `body` is what the fingerprint covers (the request body unless told otherwise).
 */
export function optionalIdempotency(
  request: FastifyRequest,
  what: string,
  body: unknown = request.body,
): IdempotencyIntent | undefined {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || request.principal === undefined) return undefined;
  return idempotencyIntent(request.principal, key, what, body);
}

export function requiredIdempotency(request: FastifyRequest, what: string): IdempotencyIntent {
  const intent = optionalIdempotency(request, what);
  if (intent === undefined)
    throw new HttpProblem('idempotency_key_required', 'send an Idempotency-Key header (1-128 printable characters)');
  return intent;
}

/**
 * If-Match as the engine takes it: `*`, or the versions listed. Weak tags
 * (`W/"7"`) never match, since If-Match uses strong comparison (RFC 9110
 * §13.1.1); a header with no usable tag therefore matches nothing (412).
 */
export function ifMatchOf(request: FastifyRequest): IfMatch | undefined {
  const header = request.headers['if-match'];
  if (typeof header !== 'string') return undefined;
  if (header.trim() === '*') return '*';
  const versions: number[] = [];
  for (const tag of header.split(',')) {
    const match = /^\s*"(\d{1,15})"\s*$/.exec(tag);
    if (match !== null) versions.push(Number(match[1]));
  }
  return versions;
}

/** Sends an engine result: the body with its ETag (and replay marker), or throws it as a problem. */
export function sendResult(reply: FastifyReply, result: OperationResult): FastifyReply {
  if (!result.ok) throw new HttpProblem(result.code, result.detail, result.extra ?? {});
  reply.code(result.status).header('etag', etag(result.body.version));
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return reply.send(result.body);
}
