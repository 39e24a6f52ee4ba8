// How this instance's store is doing, for the admin status endpoint: its kind,
// limits and revision, the circuit breaker, and for etcd the endpoints and
// members, alarms, and the backend DB size against its quota. Every etcd call
// it makes has a deadline, so the status answers even when etcd does not.
import { etcdQuotaWarnRatio } from '../constants.ts';
import type { BackendBreaker } from './backend-breaker.ts';
import type { Store } from './contract.ts';
import type { EtcdConnection } from './etcd-store.ts';
import { inspectCluster } from './etcd-topology.ts';

export interface StoreStatusDeps {
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

export async function storeStatus(deps: StoreStatusDeps): Promise<Record<string, unknown>> {
  const { store, breaker, etcd } = deps;
  const status: Record<string, unknown> = {
    store: { kind: store.kind, limits: store.limits, ...(await revisionOrError(store)) },
    breaker: breaker ? { state: breaker.state, openedCount: breaker.openedCount } : null,
  };
  if (etcd === undefined) return status;
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
  return status;
}
