// Admin status: which store this instance runs on and how that store is
// doing — for etcd the endpoints and members, the circuit breaker, the
// revision, and the backend DB size against its quota. Every etcd call it
// makes has a deadline, so the page answers even when etcd does not.
import type { FastifyInstance } from 'fastify';
import { etcdQuotaWarnRatio } from '../constants.ts';
import type { BackendBreaker } from '../store/backend-breaker.ts';
import type { Store } from '../store/contract.ts';
import type { EtcdConnection } from '../store/etcd-store.ts';
import { inspectCluster } from '../store/etcd-topology.ts';
import { jsonResponse, ref } from './schemas.ts';

export interface AdminDeps {
  store: Store;
  breaker: BackendBreaker | undefined;
  etcd:
    | { connection: EtcdConnection; prefix: string; expectMembers: number | undefined; quotaBytes: number }
    | undefined;
}

async function revisionOrError(store: Store): Promise<{ revision: number | null; revisionError?: string }> {
  try {
    return { revision: await store.revision() };
  } catch (error) {
    return { revision: null, revisionError: (error as Error).message };
  }
}

export function adminRoutes(app: FastifyInstance, deps: AdminDeps): void {
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
    async () => {
      const { store, breaker, etcd } = deps;
      const status: Record<string, unknown> = {
        store: { kind: store.kind, limits: store.limits, ...(await revisionOrError(store)) },
        breaker: breaker ? { state: breaker.state, openedCount: breaker.openedCount } : null,
      };
      if (etcd !== undefined) {
        const report = await inspectCluster(etcd.connection, {
          expectMembers: etcd.expectMembers,
          quotaBytes: etcd.quotaBytes,
        });
        const quotaUsedRatio = report.dbSizeBytes / report.quotaBytes;
        status.etcd = {
          endpoints: report.endpoints.map(({ members: _members, ...endpoint }) => endpoint),
          prefix: etcd.prefix,
          members: report.members,
          alarms: report.alarms,
          dbSizeBytes: report.dbSizeBytes,
          quotaBytes: report.quotaBytes,
          quotaUsedRatio,
          quotaNearlyFull: quotaUsedRatio >= etcdQuotaWarnRatio,
          problems: report.problems,
          warnings: report.warnings,
        };
      }
      return status;
    },
  );
}
