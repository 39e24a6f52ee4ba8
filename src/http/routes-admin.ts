// Admin status: which store this instance runs on and how that store is
// doing (see store/status.ts), as the composition root reports it.
import type { FastifyInstance } from 'fastify';
import { jsonResponse, ref } from './schemas.ts';

/** Produces the status document; it must answer (with what it could learn) even when the store does not. */
export type AdminStatus = () => Promise<Record<string, unknown>>;

export function adminRoutes(app: FastifyInstance, status: AdminStatus): void {
  app.get(
    '/v1/admin/status',
    {
      config: { role: 'admin', errors: [] },
      schema: {
        operationId: 'adminStatus',
        summary: 'Store kind, breaker state, revision and backend health',
        tags: ['admin'],
        response: { 200: jsonResponse('The status of this instance and its store', ref('AdminStatus')) },
      },
    },
    async () => status(),
  );
}
