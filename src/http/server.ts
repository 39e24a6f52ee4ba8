// The HTTP server factory: Fastify (HTTPS when given a certificate) with
// strict schema validation, API-key roles and quotas, problem+json errors,
// request ids, the access log, request metrics, OpenAPI at /docs and the
// operator page at /ui.
import { Ajv, type ValidateFunction } from 'ajv';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  httpKeepAliveTimeoutMs,
  httpRequestTimeoutMs,
  pathParamBytesMax,
  requestBodyBytesMax,
  requestUriBytesMax,
} from '../constants.ts';
import type { CutoverAdmin } from '../cutover/admin.ts';
import type { Engine } from '../engine/engine.ts';
import type { Mutations } from '../engine/mutations.ts';
import { type ErrorCode, HttpProblem } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { WatchHub } from '../watch/hub.ts';
import { AccessLog, logAccess } from './access-log.ts';
import type { ApiKeys } from './auth.ts';
import type { CursorSealer } from './cursor.ts';
import { registerOpenApi } from './openapi.ts';
import {
  addRoutableMethods,
  clientErrorHandler,
  frameworkErrorHandler,
  installMethodNotAllowed,
  installProblemHandlers,
  type ProblemLike,
  sendProblem,
} from './problem.ts';
import type { Quotas } from './quota.ts';
import { refuseUnhonoured } from './request-context.ts';
import { requestIdOf, returnRequestId } from './request-id.ts';
import { type AdminStatus, adminRoutes } from './routes-admin.ts';
import { cutoverRoutes, type ShadowHook } from './routes-cutover.ts';
import { type InternalDeps, internalRoutes } from './routes-internal.ts';
import { opsRoutes } from './routes-ops.ts';
import { orderRoutes } from './routes-orders.ts';
import { skuRoutes } from './routes-skus.ts';
import { uiRoutes } from './routes-ui.ts';
import { watchRoutes } from './routes-watch.ts';
import { namedSchemas } from './schemas.ts';

declare module 'fastify' {
  interface FastifyReply {
    /** The catalogue code of the problem this reply sent, if it sent one (set by sendProblem, read by metrics). */
    problemCode: ErrorCode | undefined;
  }
}

export interface ServerDeps {
  /** Reads (SKUs from memory, orders and listings from the store). */
  engine: Engine;
  /** Mutations: the engine itself, or in distributed mode the router that has the SKU's owner do them. */
  mutations: Mutations;
  /** Distributed mode: the route peers forward writes on, and its key. */
  internal?: InternalDeps | undefined;
  metrics: Metrics;
  apiKeys: ApiKeys;
  quotas: Quotas;
  cursors: CursorSealer;
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP when absent. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  watch: WatchHub;
  /** GET /v1/watch needs no API key. */
  watchPublic: boolean;
  isReady: () => boolean;
  isClosing: () => boolean;
  /** True while the process is too far behind to take more mutations (see load-shedder.ts). */
  isShedding?: () => boolean;
  logger: FastifyBaseLogger;
  /** The admin status endpoint's document. */
  adminStatus: AdminStatus;
  /** The routing table, moves and shadow mismatches (a single-store table without a mirror). */
  cutover: CutoverAdmin;
  /** Shadow reads, with a mirror: GET of a SKU or an order is also compared with it. */
  shadow?: ShadowHook | undefined;
}

const mutatingMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Bodies are validated without coercion (`"qty":"1"` is a 400); query strings
 * are text, so they are coerced. `verbose` keeps each failing schema on the
 * error, so the message can quote its description. Both know the named schemas.
 */
function validators(): { body: Ajv; other: Ajv } {
  const common = {
    allErrors: false,
    removeAdditional: false,
    useDefaults: false,
    strict: false,
    unicodeRegExp: true,
    verbose: true,
  } as const;
  const body = new Ajv({ ...common, coerceTypes: false });
  const other = new Ajv({ ...common, coerceTypes: true });
  for (const schema of namedSchemas) {
    body.addSchema(schema);
    other.addSchema(schema);
  }
  return { body, other };
}

/**
 * Integer query parameters must be written in digits: Ajv's coercion would
 * also take `1e2`, ` 5` or `0x10`, which the document does not allow.
 */
function digitsOnly(schema: { properties?: Record<string, { type?: unknown }> }, validate: ValidateFunction) {
  const integers = Object.entries(schema.properties ?? {})
    .filter(([, property]) => property.type === 'integer')
    .map(([name, property]) => ({ name, property }));
  if (integers.length === 0) return validate;
  const checked = (data: Record<string, unknown>) => {
    for (const { name, property } of integers) {
      const value = data?.[name];
      if (typeof value === 'string' && !/^[0-9]{1,15}$/.test(value)) {
        checked.errors = [
          {
            instancePath: `/${name}`,
            schemaPath: '',
            keyword: 'type',
            params: { type: 'integer' },
            parentSchema: property,
            data: value,
          },
        ];
        return false;
      }
    }
    const valid = validate(data);
    checked.errors = validate.errors;
    return valid;
  };
  checked.errors = null as ValidateFunction['errors'];
  return checked;
}

/**
 * JSON bodies must be UTF-8 (RFC 8259 §8.1): invalid bytes are a 400, not
 * silently replaced. Only JSON is accepted; anything else is 415.
 */
function installJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(new HttpProblem('invalid_json', 'the body is not valid UTF-8'), undefined);
      return;
    }
    parseJson(request, text, done);
  });
}

/**
 * Errors the router raises before any route or hook (bad percent-encoding,
 * over-long path parameters) bypass Fastify's hooks and its log controller,
 * so their id, metrics and access line are added here.
 */
function observedFrameworkErrors(metrics: Metrics) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    returnRequestId(reply.raw, request.id);
    reply.raw.once('finish', () => {
      metrics.requestAnswered(undefined, request.method, reply.statusCode, reply.problemCode, reply.elapsedTime / 1000);
      logAccess(request, reply);
    });
    frameworkErrorHandler(error, request, reply);
  };
}

/** What a mutation gets while the event loop is behind: sent before the body is read or the key checked. */
const behindProblem: ProblemLike = { code: 'overloaded', detail: 'the service is behind on requests; retry shortly' };

/** Everything a request passes before its route, shedding aside: URI bound, shutdown, its key, its quota, its headers. */
function admitRequest(deps: ServerDeps, request: FastifyRequest, reply: FastifyReply): void {
  returnRequestId(reply.raw, request.id);
  if (request.url.length > requestUriBytesMax)
    throw new HttpProblem('uri_too_long', `URIs are limited to ${requestUriBytesMax} bytes`);
  if (deps.isClosing()) throw new HttpProblem('not_ready', 'the service is shutting down');
  const config = request.routeOptions.config;
  if (config.role === 'cluster') deps.internal!.keys.authenticate(request);
  else request.principal = deps.apiKeys.authenticate(request, config.role ?? 'none');
  if (request.principal !== undefined) {
    const rateHeaders = deps.quotas.admitClient(request.principal.scope, request.principal.quota);
    if (rateHeaders !== undefined) reply.headers(rateHeaders);
  }
  // Routes of this API say which optional headers they act on; the UI's static files under /docs are not ours.
  if (config.role !== undefined) refuseUnhonoured(request, config.honours);
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.tls ? { https: { cert: deps.tls.cert, key: deps.tls.key } } : {}),
    loggerInstance: deps.logger,
    // One access line per request, at debug level (access-log.ts says why), carrying the request id.
    logController: new AccessLog(),
    // The id comes from requestIdOf, which checks X-Request-ID; Fastify would take the header unchecked.
    requestIdHeader: false,
    genReqId: requestIdOf,
    bodyLimit: requestBodyBytesMax, // 1 MiB
    requestTimeout: httpRequestTimeoutMs,
    keepAliveTimeout: httpKeepAliveTimeoutMs,
    // Requests that arrive while closing get our own 503 problem (see onRequest), not Fastify's plain JSON.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    frameworkErrors: observedFrameworkErrors(deps.metrics),
    clientErrorHandler,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: pathParamBytesMax },
  });
  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => {
    if (httpPart === 'body') return ajv.body.compile(schema as object);
    const validate = ajv.other.compile(schema as object);
    return httpPart === 'querystring' ? digitsOnly(schema as object, validate) : validate;
  });
  addRoutableMethods(app);
  installProblemHandlers(app);
  installJsonParser(app);
  await registerOpenApi(app);

  const routes = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    if (route.schema?.hide || route.url.startsWith('/docs')) return;
    const methods = routes.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method);
    routes.set(route.url, methods);
  });
  app.decorateReply('problemCode', undefined);
  // Hooks in callback style: an async hook costs a promise and a microtask on every request.
  app.addHook('onRequest', (request, reply, done) => {
    // Shed as cheaply as a request can be answered: nothing parsed, nothing thrown; the reply ends the request.
    if (mutatingMethods.has(request.method) && deps.isShedding?.()) {
      returnRequestId(reply.raw, request.id);
      deps.metrics.shed.inc({ reason: 'event_loop_lag' });
      sendProblem(reply, behindProblem);
      return;
    }
    try {
      admitRequest(deps, request, reply);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // While shutting down, close each keep-alive connection after its current response.
    if (deps.isClosing()) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.requestAnswered(
      request.routeOptions.url,
      request.method,
      reply.statusCode,
      reply.problemCode,
      reply.elapsedTime / 1000,
    );
    done();
  });

  const { engine, mutations, cursors, shadow } = deps;
  skuRoutes(app, { engine, mutations, cursors, shadow });
  orderRoutes(app, { engine, mutations, cursors, quotas: deps.quotas, shadow });
  if (deps.internal !== undefined) internalRoutes(app, deps.internal);
  watchRoutes(app, deps.watch, deps.watchPublic);
  opsRoutes(app, deps.metrics, deps.isReady);
  adminRoutes(app, deps.adminStatus);
  cutoverRoutes(app, deps.cutover, deps.cursors);
  uiRoutes(app);
  // Watch streams never finish on their own: end them (with a final event) before the server waits for its connections.
  app.addHook('preClose', async () => deps.watch.close());
  installMethodNotAllowed(app, routes);
  return app;
}
