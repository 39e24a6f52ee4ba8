// Every error leaves as application/problem+json (RFC 9457) with a stable
// code from the catalogue, including the ones the framework raises itself
// (unknown route, wrong method, body too large, bad JSON, bad encoding).
import { METHODS } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requestUriBytesMax, retryAfterSeconds } from '../constants.ts';
import { type ErrorCode, errorCatalogue, HttpProblem, problemBody } from '../errors.ts';
import { honourable } from './request-context.ts';
import { validationIssue } from './validation-words.ts';

export const problemContentType = 'application/problem+json';

/** A problem to send: a thrown HttpProblem, or an engine rejection (a value: no Error built, no stack captured). */
export interface ProblemLike {
  code: ErrorCode;
  detail: string;
  extra?: Record<string, unknown> | undefined;
  headers?: Record<string, string> | undefined;
}

export function sendProblem(reply: FastifyReply, problem: ProblemLike): FastifyReply {
  const status = errorCatalogue[problem.code].status;
  const headers: Record<string, string> = { ...problem.headers };
  if (status === 503 && headers['retry-after'] === undefined) headers['retry-after'] = String(retryAfterSeconds);
  reply.problemCode = problem.code; // for the error metrics, counted when the response is done
  return reply
    .code(status)
    .headers(headers)
    .type(problemContentType)
    .send(problemBody(problem.code, problem.detail, problem.extra));
}

/** Maps Fastify's own error codes onto the catalogue. */
const frameworkCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_BAD_URL: 'bad_request',
  FST_ERR_ASYNC_CONSTRAINT: 'bad_request',
  FST_ERR_MAX_PARAM_LENGTH: 'validation_failed',
};

/** Errors the router raises before any hook runs (bad percent-encoding, over-long path parameters). */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (request.url.length > requestUriBytesMax) {
    sendProblem(reply, new HttpProblem('uri_too_long', `URIs are limited to ${requestUriBytesMax} bytes`));
    return;
  }
  sendProblem(reply, toProblem(error));
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (control
 * characters in headers, a malformed request line, headers over Node's 16 KiB).
 * There is no reply object yet, so the problem is written to the socket.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode = error.code === 'HPE_HEADER_OVERFLOW' ? 'header_fields_too_large' : 'bad_request';
  const body = JSON.stringify(problemBody(code, `the request could not be parsed (${error.code ?? 'unknown error'})`));
  const status = errorCatalogue[code].status;
  socket.end(
    `HTTP/1.1 ${status} ${errorCatalogue[code].title}\r\n` +
      `Content-Type: ${problemContentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function toProblem(error: FastifyError | Error): HttpProblem {
  if (error instanceof HttpProblem) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return validationProblem(fastifyError);
  const code = fastifyError.code ? frameworkCodes[fastifyError.code] : undefined;
  if (code !== undefined) return new HttpProblem(code, error.message);
  if (error instanceof SyntaxError) return new HttpProblem('invalid_json', error.message);
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new HttpProblem('bad_request', error.message);
  }
  return new HttpProblem('internal_error', 'the request failed inside the service');
}

/**
 * A schema refusal in plain words: which field (its JSON pointer in `errors`),
 * what was wrong and what is allowed. The validators stop at the first error.
 */
export function validationProblem(error: FastifyError, code?: ErrorCode): HttpProblem {
  const issues = (error.validation ?? []).map((issue) => validationIssue(error.validationContext ?? 'body', issue));
  const first = issues[0];
  // A missing Idempotency-Key keeps its own code, whichever route requires it.
  const missingKey =
    first?.location === 'headers' &&
    first.pointer === '/idempotency-key' &&
    error.validation?.[0]?.keyword === 'required';
  return new HttpProblem(
    code ?? (missingKey ? 'idempotency_key_required' : 'validation_failed'),
    first?.message ?? 'the request does not match the schema',
    { errors: issues },
  );
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const problem = toProblem(error);
    // 503s are expected operating states (overload, shutdown, store down) and have their own metrics.
    if (problem.code === 'internal_error') request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new HttpProblem('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}

/**
 * Every method Node's HTTP parser accepts except CONNECT (which never reaches
 * a request handler): a known path answers each one it does not serve with
 * 405 and Allow. Methods Node cannot parse get 400 from the parser.
 */
export const routableMethods = METHODS.filter((method) => method !== 'CONNECT');

/** Lets Fastify route every method in routableMethods (it knows only the common ones by default). */
export function addRoutableMethods(app: FastifyInstance): void {
  for (const method of routableMethods) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method);
  }
}

/**
 * Answers 405 (with Allow) for a known path asked with a method it does not
 * take. Call after every route is registered, with the methods each path takes.
 */
export function installMethodNotAllowed(app: FastifyInstance, routes: Map<string, Set<string>>): void {
  for (const [url, methods] of routes) {
    if (methods.has('GET')) methods.add('HEAD');
    const others = routableMethods.filter((method) => !methods.has(method));
    if (others.length === 0) continue;
    const allow = [...methods].join(', ');
    const refuse = (request: FastifyRequest, reply: FastifyReply) =>
      sendProblem(
        reply,
        new HttpProblem('method_not_allowed', `${request.method} is not allowed here; use ${allow}`, {}, { allow }),
      );
    app.route({
      method: others,
      url,
      schema: { hide: true },
      // Any header goes: the method is what is refused.
      config: { role: 'none', honours: honourable },
      // Answered before any body is read: QUERY, for one, would otherwise be refused for its missing Content-Type.
      onRequest: async (request, reply) => refuse(request, reply),
      handler: refuse,
    });
  }
}
