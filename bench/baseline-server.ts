// The same-run baseline: a bare Fastify server on the same runtime that parses
// the same JSON body as `POST /v1/orders` and answers a body of similar size,
// with no validation beyond JSON parsing, no auth and no storage. Whatever
// hotstock does on top of this is what the ratio prices.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const app = Fastify({ logger: false });

app.post('/v1/orders', async (request, reply) => {
  const { sku, qty, userId } = request.body as { sku: string; qty: number; userId: string };
  const now = Date.now();
  reply.code(201).header('etag', '"1"');
  return {
    id: randomUUID(),
    sku,
    qty,
    userId,
    state: 'created',
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 900_000).toISOString(),
    history: [{ state: 'created', at: new Date(now).toISOString() }],
    version: 1,
  };
});

const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`baseline listening at ${url}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, () => app.close().then(() => process.exit(0)));
