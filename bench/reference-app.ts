// What the same-run reference servers (bench/baseline-server.ts,
// bench/lean-floor-server.ts, bench/redis-peer-server.ts) share: the order
// they answer (the shape and size of hotstock's), strict validation of the
// body hotstock takes with hotstock's own JSON schema, problem+json errors,
// the `--stock sku=units` flag, and the "listening at <url>" line the bench
// waits for.
import { parseArgs } from 'node:util';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { idSchema, reservationSchema as reservationBodySchema } from '../src/http/schemas.ts';

export interface OrderBody {
  sku: string;
  qty: number;
  userId: string;
}

export interface OrderReply extends OrderBody {
  id: string;
  state: 'created';
  priceCents: number;
  createdAt: string;
  expiresAt: string;
  history: { state: 'created'; at: string }[];
  version: number;
}

/** hotstock's default reservation TTL, so the answers carry the same dates. */
const reservationTtlMs = 15 * 60_000;
/** The price the bench gives its SKUs. */
const benchPriceCents = 1999;
/** hotstock's JSON body limit (1 MiB). */
const bodyBytesMax = 1024 * 1024;
/** Units of one SKU a reference server may be started with. */
const stockUnitsMax = Number.MAX_SAFE_INTEGER;

/** A new order in `created`, as hotstock answers it. */
export function createdOrder(body: OrderBody, id: string, nowMs: number): OrderReply {
  const createdAt = new Date(nowMs).toISOString();
  return {
    id,
    sku: body.sku,
    qty: body.qty,
    userId: body.userId,
    state: 'created',
    priceCents: benchPriceCents,
    createdAt,
    expiresAt: new Date(nowMs + reservationTtlMs).toISOString(),
    history: [{ state: 'created', at: createdAt }],
    version: 1,
  };
}

/**
 * Fastify validating as hotstock does: no type coercion (`"qty":"1"` is a
 * 400), unknown fields are a 400 rather than silently dropped (Fastify's
 * default removes them), bodies up to 1 MiB.
 */
export function referenceApp(): FastifyInstance {
  return Fastify({
    logger: false,
    bodyLimit: bodyBytesMax,
    ajv: {
      customOptions: {
        allErrors: false,
        removeAdditional: false,
        useDefaults: false,
        coerceTypes: false,
        strict: false,
        unicodeRegExp: true,
      },
    },
  });
}

/** POST /v1/orders: hotstock's body schema, and the Idempotency-Key it requires. */
export const reservationSchema = {
  body: reservationBodySchema,
  headers: {
    type: 'object',
    required: ['idempotency-key'],
    properties: { 'idempotency-key': idSchema },
  },
} as const;

export function problem(reply: FastifyReply, status: number, code: string, detail: string) {
  reply.code(status).type('application/problem+json');
  return { type: 'about:blank', title: code.replaceAll('_', ' '), status, code, detail };
}

/** A new or recorded order as the answer to `body`: 201, or 422 when the key was used for another body. */
export function orderAnswer(reply: FastifyReply, order: OrderReply, body: OrderBody) {
  if (order.sku !== body.sku || order.qty !== body.qty || order.userId !== body.userId) {
    return problem(reply, 422, 'idempotency_key_reused', 'this Idempotency-Key was used for another body');
  }
  reply.code(201).header('etag', `"${order.version}"`);
  return order;
}

/** The stock answer when a SKU cannot take `qty` more: unknown, sold out, or short. */
export function stockProblem(reply: FastifyReply, available: number | undefined, qty: number) {
  if (available === undefined) return problem(reply, 404, 'sku_not_found', 'no such SKU');
  if (available === 0) return problem(reply, 409, 'sold_out', 'no units left');
  return problem(reply, 409, 'insufficient_stock', `${available} units left, ${qty} asked`);
}

/** `--stock sku=units` (repeatable) and the server's own flags (each required), parsed strictly. */
export function referenceFlags<const Names extends string>(
  names: readonly Names[],
): { stock: Map<string, number>; values: Record<Names, string> } {
  const options = Object.fromEntries(names.map((name) => [name, { type: 'string' as const }]));
  const parsed = parseArgs({ options: { ...options, stock: { type: 'string', multiple: true } }, strict: true });
  const values = parsed.values as Record<string, string | string[] | undefined>;
  for (const name of names) if (typeof values[name] !== 'string') throw new Error(`--${name} is required`);
  const stock = new Map<string, number>();
  for (const pair of (values.stock as string[] | undefined) ?? []) {
    const [sku, units] = pair.split('=');
    const count = Number(units);
    if (!sku || !Number.isSafeInteger(count) || count < 0 || count > stockUnitsMax) {
      throw new Error(`--stock takes sku=units, not ${pair}`);
    }
    stock.set(sku, count);
  }
  return { stock, values: values as Record<Names, string> };
}

/** Listens on a free loopback port, says where (the bench reads the line), and closes on SIGTERM/SIGINT. */
export async function listen(app: FastifyInstance, label: string, close: () => Promise<void> = async () => {}) {
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${label} listening at ${url}\n`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () =>
      app
        .close()
        .then(close)
        .then(() => process.exit(0)),
    );
  }
}
