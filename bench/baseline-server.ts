// The same-run baseline: a bare Fastify server on the same runtime that parses
// the same JSON body as `POST /v1/orders` and answers a body of the same shape,
// with no validation beyond JSON parsing, no auth and no storage. Whatever
// hotstock does on top of this is what the ratio prices.
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { createdOrder, listen, type OrderBody } from './reference-app.ts';

const app = Fastify({ logger: false });

app.post('/v1/orders', async (request, reply) => {
  reply.code(201).header('etag', '"1"');
  return createdOrder(request.body as OrderBody, randomUUID(), Date.now());
});

await listen(app, 'baseline');
