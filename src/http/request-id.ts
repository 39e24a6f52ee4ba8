// Every request has an id: the client's `X-Request-ID` when it is a sane
// token, a fresh UUID otherwise. Fastify puts it on every log line of the
// request (see access-log.ts) and the response carries it back, so a client's
// report, a proxy's log and hotstock's log can be matched line for line.
//
// The header is hostile input like any other: a value too long or with
// characters outside the token set below is replaced, never echoed into a
// log line or a response header.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestIdLengthMax } from '../constants.ts';

export const requestIdHeader = 'x-request-id';

/** UUIDs, ULIDs, hex trace ids and most proxies' ids fit; spaces, quotes, commas and control characters do not. */
const requestIdPattern = new RegExp(`^[A-Za-z0-9._:-]{1,${requestIdLengthMax}}$`);

/** Fastify's `genReqId`: the client's id if it is acceptable, else a new one. */
export function requestIdOf(request: IncomingMessage): string {
  // Repeated headers arrive joined with ", ", which the pattern refuses.
  const sent = request.headers[requestIdHeader];
  return typeof sent === 'string' && requestIdPattern.test(sent) ? sent : randomUUID();
}

/**
 * Set on the raw response, so every way out carries it: Fastify's replies,
 * error replies, and the watch stream, which writes its own head.
 */
export function returnRequestId(response: ServerResponse, id: string): void {
  response.setHeader(requestIdHeader, id);
}
