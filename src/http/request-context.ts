// Turning HTTP request details into engine inputs, idempotency intents
// (scoped per API key, fingerprinted over what the request asks for) and
// If-Match versions, and engine results into responses.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyIntent, IfMatch, OperationResult, Rejected } from '../engine/operations.ts';
import { HttpProblem } from '../errors.ts';
import type { Principal } from './auth.ts';
import { etag, resourceView } from './views.ts';

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
  return { scope: principal.scope, key, fingerprint };
}

/**
 * A reservation's intent: no fingerprint, since a retry must match the order's
 * own fields (SKU, quantity, user), which the engine compares.
 */
export function reservationIntent(principal: Principal, key: string): IdempotencyIntent {
  return { scope: principal.scope, key };
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

/** The Idempotency-Key a reservation must carry. */
export function requiredReservationIntent(request: FastifyRequest): IdempotencyIntent {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || request.principal === undefined)
    throw new HttpProblem('idempotency_key_required', 'send an Idempotency-Key header (1-128 printable characters)');
  return reservationIntent(request.principal, key);
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

/** An engine rejection as the problem the HTTP layer sends. */
export function problemOf(rejection: Rejected): HttpProblem {
  return new HttpProblem(rejection.code, rejection.detail, rejection.extra ?? {});
}

/** Returns the value, or throws the engine's rejection as a problem. */
export function orProblem<T>(value: T | Rejected): T {
  if (value !== null && typeof value === 'object' && 'ok' in value && value.ok === false) throw problemOf(value);
  return value as T;
}

/** Sends an engine result: the resource's view with its ETag (and replay marker), or throws it as a problem. */
export function sendResult(reply: FastifyReply, result: OperationResult): FastifyReply {
  if (!result.ok) throw problemOf(result);
  reply.code(result.status).header('etag', etag(result.version));
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return reply.send(resourceView(result.resource, result.version));
}
