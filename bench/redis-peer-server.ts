// The Redis + Lua peer: what a team would likely build instead of hotstock,
// measured beside it in scenario 1. `POST /v1/orders` takes hotstock's body,
// validated by hotstock's JSON schema and its Idempotency-Key, and runs one
// Lua script per reservation (EVALSHA), atomic in Redis: check the
// idempotency key (a retry answers the recorded order), check and decrement
// the SKU's stock, write the order and the idempotency record, answer.
//
// Not durable per request, unlike hotstock and the lean floor: the bench runs
// redis-server with `appendonly yes` and `appendfsync everysec`, so an
// acknowledged order can be lost if the machine fails within a second.
//
//   node bench/redis-peer-server.ts --redis-url redis://127.0.0.1:6379 --stock hot=1000000
import { randomUUID } from 'node:crypto';
import { createClient } from '@redis/client';
import {
  createdOrder,
  listen,
  type OrderBody,
  type OrderReply,
  orderAnswer,
  referenceApp,
  referenceFlags,
  reservationSchema,
  stockProblem,
} from './reference-app.ts';

/** Giving up on connecting to Redis at start (it is already up when the bench starts this server). */
const connectTimeoutMs = 5_000;

/**
 * KEYS: the idempotency record, the SKU's stock, the new order.
 * ARGV: units asked, the new order's JSON.
 * The idempotency record holds the order's key, which a retry reads back
 * (one standalone Redis: no cluster slot rules to keep).
 */
const reserveScript = `
local recorded = redis.call('GET', KEYS[1])
if recorded then return {'replay', redis.call('GET', recorded)} end
local available = redis.call('GET', KEYS[2])
if not available then return {'unknown'} end
available = tonumber(available)
local qty = tonumber(ARGV[1])
if available < qty then return {'short', available} end
redis.call('DECRBY', KEYS[2], qty)
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SET', KEYS[1], KEYS[3])
return {'created'}
`;

type ScriptAnswer = ['created'] | ['replay', string] | ['unknown'] | ['short', number];

const { stock, values } = referenceFlags(['redis-url']);
const client = createClient({
  url: values['redis-url'],
  socket: { noDelay: true, connectTimeout: connectTimeoutMs, reconnectStrategy: false },
  // A request while Redis is unreachable fails at once instead of waiting in the client.
  disableOfflineQueue: true,
});
client.on('error', (error: Error) => process.stderr.write(`redis: ${error.message}\n`));
await client.connect();
const reserveSha = await client.scriptLoad(reserveScript);
for (const [sku, units] of stock) await client.set(`stock/${sku}`, String(units));

const app = referenceApp();
app.post('/v1/orders', { schema: reservationSchema }, async (request, reply) => {
  const body = request.body as OrderBody;
  const order = createdOrder(body, randomUUID(), Date.now());
  const result = (await client.evalSha(reserveSha, {
    keys: [`idem/${request.headers['idempotency-key']}`, `stock/${body.sku}`, `order/${order.id}`],
    arguments: [String(body.qty), JSON.stringify(order)],
  })) as ScriptAnswer;
  if (result[0] === 'unknown') return stockProblem(reply, undefined, body.qty);
  if (result[0] === 'short') return stockProblem(reply, result[1], body.qty);
  return orderAnswer(reply, result[0] === 'replay' ? (JSON.parse(result[1]) as OrderReply) : order, body);
});

await listen(app, 'Redis + Lua peer', async () => {
  await client.close();
});
