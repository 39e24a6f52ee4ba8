// Start-up checks of an etcd cluster: ask every configured endpoint on its
// own for its status and member list, and refuse to start on a cluster that
// is not what was configured. The classic failure is the "pseudo cluster":
// several independent single-member etcds listed as one cluster. Each
// accepts writes, none replicates to the others, and two hotstock instances
// talking to different ones sell the same stock twice. It shows up as
// endpoints that disagree on the cluster ID or the member list, answer as the
// same member, or list members with the same name.
import type { Etcd3 } from 'etcd3';
import { etcdQuotaWarnRatio, etcdStatusTimeoutMs } from '../constants.ts';
import type { EtcdConnection } from './etcd-store.ts';
import { createEtcdClient, deadline } from './etcd-store.ts';

export interface EndpointReport {
  endpoint: string;
  ok: boolean;
  error?: string;
  clusterId?: string;
  memberId?: string;
  leaderId?: string;
  version?: string;
  dbSizeBytes?: number;
  members?: { id: string; name: string; clientUrls: string[] }[];
}

export interface ClusterReport {
  endpoints: EndpointReport[];
  /** Members as the answering endpoints list them (from the first that answered). */
  members: { id: string; name: string; clientUrls: string[] }[];
  alarms: { memberId: string; alarm: string }[];
  /** Largest backend DB size any member reports. */
  dbSizeBytes: number;
  quotaBytes: number;
  /** Reasons to refuse to start. */
  problems: string[];
  /** Things an operator should know that do not stop the start. */
  warnings: string[];
}

/** The cluster is not what was configured; the message says what is wrong. */
export class TopologyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TopologyError';
  }
}

/** One client per endpoint, without failover, so each answer is that endpoint's own. */
function singleEndpointClient(connection: EtcdConnection, endpoint: string): Etcd3 {
  return createEtcdClient({ ...connection, endpoints: [endpoint] });
}

async function inspectEndpoint(connection: EtcdConnection, endpoint: string): Promise<EndpointReport> {
  const client = singleEndpointClient(connection, endpoint);
  try {
    const status = await client.maintenance.status(deadline(etcdStatusTimeoutMs));
    const list = await client.cluster.memberList({}, deadline(etcdStatusTimeoutMs));
    return {
      endpoint,
      ok: true,
      clusterId: status.header.cluster_id,
      memberId: status.header.member_id,
      leaderId: status.leader,
      version: status.version,
      dbSizeBytes: Number(status.dbSize),
      members: list.members.map((member) => ({
        id: member.ID,
        name: member.name,
        clientUrls: member.clientURLs,
      })),
    };
  } catch (error) {
    return { endpoint, ok: false, error: (error as Error).message };
  } finally {
    client.close();
  }
}

async function alarmsOf(connection: EtcdConnection): Promise<{ memberId: string; alarm: string }[]> {
  const client = createEtcdClient(connection);
  try {
    const response = await client.maintenance.alarm(
      { action: 'Get', alarm: 'None', memberID: 0 },
      deadline(etcdStatusTimeoutMs),
    );
    // etcd3 names the alarm type "Nospace"; etcdctl and the docs say NOSPACE.
    return response.alarms.map((alarm) => ({ memberId: alarm.memberID, alarm: String(alarm.alarm).toUpperCase() }));
  } finally {
    client.close();
  }
}

function duplicates(values: readonly string[]): string[] {
  return [...new Set(values.filter((value, i) => values.indexOf(value) !== i))];
}

/** Asks every endpoint, then lists what makes this cluster unfit (problems) or worth a look (warnings). */
export async function inspectCluster(
  connection: EtcdConnection,
  options: { expectMembers: number | undefined; quotaBytes: number },
): Promise<ClusterReport> {
  const endpoints = await Promise.all(connection.endpoints.map((endpoint) => inspectEndpoint(connection, endpoint)));
  const answering = endpoints.filter((report) => report.ok);
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const report of endpoints) {
    if (!report.ok) warnings.push(`etcd endpoint ${report.endpoint} does not answer: ${report.error}`);
  }
  if (answering.length === 0) {
    problems.push(`no etcd endpoint answers (${connection.endpoints.join(', ')})`);
    return { endpoints, members: [], alarms: [], dbSizeBytes: 0, quotaBytes: options.quotaBytes, problems, warnings };
  }
  const clusterIds = new Set(answering.map((report) => report.clusterId));
  if (clusterIds.size > 1) {
    problems.push(
      `the etcd endpoints belong to ${clusterIds.size} different clusters (${answering
        .map((report) => `${report.endpoint} is in cluster ${report.clusterId}`)
        .join(', ')}): they are independent etcds, not one cluster`,
    );
  }
  const sameMember = duplicates(answering.map((report) => report.memberId!));
  if (sameMember.length > 0) {
    problems.push(
      `several endpoints answer as the same etcd member (ID ${sameMember.join(', ')}): copies of one member, not a cluster`,
    );
  }
  const memberSets = new Set(
    answering.map((report) =>
      report
        .members!.map((member) => member.id)
        .sort()
        .join(','),
    ),
  );
  if (memberSets.size > 1) problems.push('the etcd endpoints disagree on the member list');
  const members = answering[0]!.members!;
  for (const [label, values] of [
    ['names', members.map((member) => member.name)],
    ['IDs', members.map((member) => member.id)],
  ] as const) {
    const repeated = duplicates(values);
    if (repeated.length > 0) problems.push(`the etcd member list repeats member ${label}: ${repeated.join(', ')}`);
  }
  const allNames = answering.flatMap((report) =>
    report.members!.filter((member) => member.id === report.memberId).map((member) => member.name),
  );
  if (clusterIds.size > 1 && duplicates(allNames).length > 0) {
    problems.push(`members of the different clusters share names: ${duplicates(allNames).join(', ')}`);
  }
  if (options.expectMembers !== undefined && members.length !== options.expectMembers) {
    problems.push(
      `--etcd-expect-members ${options.expectMembers}, but the cluster has ${members.length} member(s): ${members
        .map((member) => member.name || member.id)
        .join(', ')}`,
    );
  }
  const quorum = Math.floor(members.length / 2) + 1;
  const answeringMembers = new Set(answering.map((report) => report.memberId)).size;
  if (
    options.expectMembers !== undefined &&
    connection.endpoints.length >= members.length &&
    answeringMembers < quorum
  ) {
    problems.push(
      `only ${answeringMembers} of the ${members.length} etcd members answer; the cluster needs ${quorum} to accept writes`,
    );
  }
  if (answering.every((report) => report.leaderId === '0')) warnings.push('the etcd cluster has no leader');
  let alarms: { memberId: string; alarm: string }[] = [];
  try {
    alarms = await alarmsOf(connection);
  } catch (error) {
    warnings.push(`could not read etcd alarms: ${(error as Error).message}`);
  }
  if (alarms.some((alarm) => alarm.alarm === 'NOSPACE')) {
    problems.push(
      'etcd has raised its NOSPACE alarm (backend quota exceeded; writes are refused): compact and defragment it, or raise --quota-backend-bytes, then run `etcdctl alarm disarm`',
    );
  }
  for (const alarm of alarms) {
    if (alarm.alarm !== 'NOSPACE') warnings.push(`etcd member ${alarm.memberId} has alarm ${alarm.alarm}`);
  }
  const dbSizeBytes = Math.max(...answering.map((report) => report.dbSizeBytes ?? 0));
  if (dbSizeBytes >= options.quotaBytes * etcdQuotaWarnRatio) {
    warnings.push(
      `etcd backend DB is ${dbSizeBytes} bytes, ${Math.round((100 * dbSizeBytes) / options.quotaBytes)}% of its ${options.quotaBytes}-byte quota (--etcd-quota-bytes): compact and defragment soon`,
    );
  }
  return { endpoints, members, alarms, dbSizeBytes, quotaBytes: options.quotaBytes, problems, warnings };
}

/** Inspects the cluster and throws a TopologyError naming every problem, if there is one. */
export async function assertClusterFit(
  connection: EtcdConnection,
  options: { expectMembers: number | undefined; quotaBytes: number },
): Promise<ClusterReport> {
  const report = await inspectCluster(connection, options);
  if (report.problems.length > 0) {
    throw new TopologyError(`refusing to start on this etcd cluster: ${report.problems.join('; ')}`);
  }
  return report;
}
