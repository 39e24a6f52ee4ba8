// The lean durable floor: about the least a durable reservation can cost on
// this stack, measured beside hotstock in scenario 1. `POST /v1/orders` takes
// hotstock's body, validated by hotstock's JSON schema (required fields, no
// others, exact types, bounds) and its Idempotency-Key; reads that key's
// record once (a retry answers the recorded order; another body under the
// same key is 422); decides stock in memory; writes two keys (the order and
// its idempotency record) in one LMDB transaction; and replies only once
// lmdb-js has flushed it to disk. No auth, no per-user limit, no indexes, no
// expiry, no metrics: what hotstock does beyond this is what the ratio prices.
//
//   node bench/lean-floor-server.ts --data-dir DIR --stock hot=1000000
//
// Stock is set by the flags at every start (a real service would rebuild it
// from its orders); the bench always starts on a fresh directory.
import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { open } from 'lmdb';
import {
  createdOrder,
  listen,
  type OrderBody,
  type OrderReply,
  orderAnswer,
  problem,
  referenceApp,
  referenceFlags,
  reservationSchema,
  stockProblem,
} from './reference-app.ts';

/** Address space reserved for the map, not disk: far more than a bench run writes. */
const mapSizeBytes = 8 * 1024 ** 3;

const { stock, values } = referenceFlags(['data-dir']);
const db = open<OrderReply | string, string>({
  path: values['data-dir'],
  noSubdir: false,
  maxDbs: 1,
  mapSize: mapSizeBytes,
  // Durable before the reply: a commit's promise resolves after fsync, and syncing is never skipped.
  overlappingSync: false,
  noSync: false,
  noMetaSync: false,
  // Group commit as lmdb-js does it: every write issued in one event turn shares a transaction.
  eventTurnBatching: true,
  commitDelay: 0,
  encoding: 'msgpack',
  keyEncoding: 'ordered-binary',
  useVersions: false,
  compression: false,
  cache: false,
  readOnly: false,
});
const orderKey = (id: string) => `order/${id}`;
const idempotencyKey = (key: string) => `idem/${key}`;
/** Reservations being committed, by Idempotency-Key: a duplicate arriving meanwhile waits for the first. */
const committing = new Map<string, Promise<OrderReply | undefined>>();

/** The answer once a commit settled: its order, or a 503 when the commit failed. */
function answer(reply: FastifyReply, order: OrderReply | undefined, body: OrderBody) {
  if (order === undefined) return problem(reply, 503, 'store_unavailable', 'the commit failed; retry');
  return orderAnswer(reply, order, body);
}

const app = referenceApp();
app.post('/v1/orders', { schema: reservationSchema }, async (request, reply) => {
  const key = request.headers['idempotency-key'] as string;
  const body = request.body as OrderBody;
  const pending = committing.get(key);
  if (pending !== undefined) return answer(reply, await pending, body);
  const recordedId = db.get(idempotencyKey(key)) as string | undefined;
  if (recordedId !== undefined) return orderAnswer(reply, db.get(orderKey(recordedId)) as OrderReply, body);
  const available = stock.get(body.sku);
  if (available === undefined || available < body.qty) return stockProblem(reply, available, body.qty);
  stock.set(body.sku, available - body.qty);
  const order = createdOrder(body, randomUUID(), Date.now());
  // Both puts in one transaction, which lmdb-js shares with every other write of this event turn
  // (db.batch, which skips the callback inside the write transaction, measured slower here).
  const committed = db.transaction(() => {
    db.put(orderKey(order.id), order);
    db.put(idempotencyKey(key), order.id);
  });
  const outcome = committed.then(
    () => order,
    () => {
      // Nothing was written: the units go back.
      stock.set(body.sku, stock.get(body.sku)! + body.qty);
      return undefined;
    },
  );
  committing.set(key, outcome);
  try {
    return answer(reply, await outcome, body);
  } finally {
    committing.delete(key);
  }
});

await listen(app, 'lean durable floor', () => db.close());
