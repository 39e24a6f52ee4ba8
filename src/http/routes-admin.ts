// Admin status: which store this instance runs on and how that store is
// doing (see store/status.ts), as the composition root reports it.
import type { FastifyInstance } from 'fastify';

/** Produces the status document; it must answer (with what it could learn) even when the store does not. */
export type AdminStatus = () => Promise<Record<string, unknown>>;

export function adminRoutes(app: FastifyInstance, status: AdminStatus): void {
  app.get(
    '/v1/admin/status',
    {
      config: { role: 'admin' },
      schema: { summary: 'Store kind, breaker state, revision and backend health', tags: ['admin'] },
    },
    async () => status(),
  );
}
