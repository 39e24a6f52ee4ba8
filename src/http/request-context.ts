// Turning HTTP request details into engine inputs, idempotency intents
// (scoped per API key, fingerprinted over what the request asks for) and
// If-Match versions; refusing the request headers a route cannot honour;
// engine results into responses: versioned reads (ETag, If-None-Match ->
// 304) and creations (Location).
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyIntent, IfMatch, OperationResult, Rejected, Resource } from '../engine/operations.ts';
import { HttpProblem } from '../errors.ts';
import type { Principal } from './auth.ts';
import { sendProblem } from './problem.ts';
import { etag, resourceView } from './views.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    role?: import('./auth.ts').RouteRole;
    /** The optional request headers this route acts on; any other of `honourable` is refused. */
    honours?: readonly HonourableHeader[];
  }
}

/**
 * Request headers that change what a request means: preconditions (RFC 9110
 * §13.1) and Idempotency-Key. A route that cannot act on one refuses it
 * (400 unsupported_header) instead of ignoring it, so a client never believes
 * a condition held or a retry was safe when it was not.
 */
export const honourable = [
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'idempotency-key',
] as const;
export type HonourableHeader = (typeof honourable)[number];

/** Throws unsupported_header when the request sent a header of `honourable` the route does not act on. */
export function refuseUnhonoured(request: FastifyRequest, honours: readonly HonourableHeader[] = []): void {
  for (const name of honourable) {
    if (request.headers[name] !== undefined && !honours.includes(name)) {
      const acted = honours.length === 0 ? 'none of these headers' : honours.join(', ');
      throw new HttpProblem(
        'unsupported_header',
        `${request.method} ${request.routeOptions.url} cannot honour ${name}; it acts on ${acted}`,
        { header: name },
      );
    }
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

/** The Idempotency-Key a mutation other than a reservation must carry (an adjustment). */
export function requiredIdempotency(
  request: FastifyRequest,
  what: string,
  body: unknown = request.body,
): IdempotencyIntent {
  const intent = optionalIdempotency(request, what, body);
  if (intent === undefined)
    throw new HttpProblem('idempotency_key_required', 'send an Idempotency-Key header (1-128 printable characters)');
  return intent;
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

/** Entity tags of a list header (If-None-Match), weak or strong, as versions; `*` matches any. */
function taggedVersions(header: string): '*' | number[] {
  if (header.trim() === '*') return '*';
  const versions: number[] = [];
  for (const tag of header.split(',')) {
    const match = /^\s*(?:W\/)?"(\d{1,15})"\s*$/.exec(tag);
    if (match !== null) versions.push(Number(match[1]));
  }
  return versions;
}

/**
 * Sends a versioned resource on a read: If-Match first (412 on a mismatch,
 * strong comparison), then If-None-Match (304 on a match, weak comparison),
 * as RFC 9110 §13.2.2 orders them; else the view with its ETag.
 */
export function sendVersioned(
  request: FastifyRequest,
  reply: FastifyReply,
  version: number,
  view: object,
): FastifyReply {
  const tag = etag(version);
  const ifMatch = ifMatchOf(request);
  if (ifMatch !== undefined && ifMatch !== '*' && !ifMatch.includes(version)) {
    throw new HttpProblem('precondition_failed', `the current version is ${tag}`, { version });
  }
  const ifNoneMatch = request.headers['if-none-match'];
  if (typeof ifNoneMatch === 'string') {
    const versions = taggedVersions(ifNoneMatch);
    if (versions === '*' || versions.includes(version)) return reply.code(304).header('etag', tag).send();
  }
  return reply.header('etag', tag).send(view);
}

/** Where a created resource lives. */
export function locationOf(resource: Resource): string {
  return resource.kind === 'order'
    ? `/v1/orders/${encodeURIComponent(resource.order.id)}`
    : `/v1/skus/${encodeURIComponent(resource.sku.sku)}`;
}

/**
 * Sends an engine result: the resource's view with its ETag (and replay
 * marker), and its Location on a 201; or throws the rejection as a problem.
 */
export function sendResult(reply: FastifyReply, result: OperationResult): FastifyReply {
  // Sent, not thrown: a sold-out storm or a shed burst should not build an Error (and its stack) per request.
  if (!result.ok) return sendProblem(reply, result);
  reply.code(result.status).header('etag', etag(result.version));
  if (result.status === 201) reply.header('location', locationOf(result.resource));
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return reply.send(resourceView(result.resource, result.version));
}
