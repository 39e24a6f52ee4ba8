// The access log: one line per request, at `debug` level, written when the
// response has finished. It carries the request id (like every line a request
// logs), method, URL, route, status and response time.
//
// Why debug and not sampled at info: at flash-sale rates a line per request
// costs more CPU than the reservation itself, and Prometheus already counts
// every request by route and status; the line worth having is the one for the
// request being chased, which a sample would usually have dropped. Operators
// turn it on with `--log-level debug` while they look into something.
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { routeLabel } from '../metrics.ts';

/** The key each request's log lines carry its id under. */
export const requestIdLogLabel = 'requestId';
/** Levels at which `debug` lines are written. */
const debugLevels = new Set(['debug', 'trace']);

export class AccessLog extends LogController {
  constructor() {
    super({ requestIdLogLabel });
  }

  /** One line per request, at its end (it knows the status and time); none when it arrives. */
  override incomingRequest(): void {}

  /** Unknown routes are in the access line (route "unmatched") and counted in metrics. */
  override routeNotFound(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ err: error, ...accessFields(request, reply) }, 'request errored');
    else logAccess(request, reply);
  }
}

/** The access line of a finished request (also written by hand where Fastify does not call the controller). */
export function logAccess(request: FastifyRequest, reply: FastifyReply): void {
  // Skips building the fields when debug is off, which is the hot path.
  if (debugLevels.has(request.log.level)) request.log.debug(accessFields(request, reply), 'request completed');
}

function accessFields(request: FastifyRequest, reply: FastifyReply): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url,
    route: routeLabel(request.routeOptions.url),
    statusCode: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 1000) / 1000,
    remoteAddress: request.ip,
  };
}
