// Operational endpoints: liveness, readiness, Prometheus metrics. No key needed.
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { jsonResponse, ref } from './schemas.ts';

export function opsRoutes(app: FastifyInstance, metrics: Metrics, isReady: () => boolean): void {
  app.get(
    '/healthz',
    {
      config: { role: 'none', errors: [] },
      schema: {
        operationId: 'healthz',
        summary: 'Liveness',
        tags: ['ops'],
        response: { 200: jsonResponse('The process answers', ref('Status')) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { role: 'none', errors: [] },
      schema: {
        operationId: 'readyz',
        summary: 'Readiness: warm and accepting (503 not_ready while starting or shutting down)',
        tags: ['ops'],
        response: { 200: jsonResponse('Warm and accepting', ref('Status')) },
      },
    },
    async () => {
      if (!isReady()) throw new HttpProblem('not_ready', 'the service is starting or shutting down');
      return { status: 'ready' };
    },
  );

  app.get(
    '/metrics',
    {
      config: { role: 'none', errors: [] },
      schema: {
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        tags: ['ops'],
        response: {
          200: {
            description: 'The Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
