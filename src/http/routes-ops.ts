// Operational endpoints: liveness, readiness, Prometheus metrics. No key needed.
import type { FastifyInstance } from 'fastify';
import { HttpProblem } from '../errors.ts';
import type { Metrics } from '../metrics.ts';

export function opsRoutes(app: FastifyInstance, metrics: Metrics, isReady: () => boolean): void {
  app.get('/healthz', { config: { role: 'none' }, schema: { summary: 'Liveness', tags: ['ops'] } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { config: { role: 'none' }, schema: { summary: 'Readiness: warm and accepting', tags: ['ops'] } },
    async () => {
      if (!isReady()) throw new HttpProblem('not_ready', 'the service is starting or shutting down');
      return { status: 'ready' };
    },
  );

  app.get(
    '/metrics',
    { config: { role: 'none' }, schema: { summary: 'Prometheus metrics', tags: ['ops'] } },
    async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
}
