// Several `hotstock serve` processes on one etcd cluster, as distributed-mode
// tests need them: started together, waited for until the shards of SKUs
// are spread over them (each instance's own admin status says so), and asked
// which of them owns a SKU (the owner key in etcd, read through etcd's JSON
// gateway, against each instance's member id).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { shardOf } from '../../src/cluster/shards.ts';
import { clusterShardsCount } from '../../src/constants.ts';
import { keys } from '../../src/layout.ts';
import { type EtcdCluster, startEtcdCluster } from './etcd.ts';
import { call, sleep } from './load.ts';
import {
  adminKey,
  createSku,
  etcdServeArgs,
  killIfRunning,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from './service.ts';

/** How long instances may take to spread the shards between them; generous, the machine is shared. */
const settleWaitMsMax = 60_000;
const settlePollMs = 200;

export interface ClusterStatus {
  memberId: string;
  url: string | null;
  connected: boolean;
  members: { id: string; url: string }[];
  shards: number;
  shardsHeld: number;
  shardsServing: number;
  shardOwners: Record<string, number>;
}

export interface ClusterFixture {
  readonly etcd: EtcdCluster;
  /** The instances' data directory (unused on etcd, but `serve` takes one). */
  readonly dataDir: string;
  /** Every instance the test started: ended (resumed first, if paused) after the tests. */
  readonly running: ServerProcess[];
}

/** A real etcd cluster of `size` members for a test file's instances: started before its tests, all ended after. */
export function useEtcdCluster(label: string, size: number): ClusterFixture {
  const data = tempDataDir(label);
  const running: ServerProcess[] = [];
  let etcd: EtcdCluster | undefined;
  before(async () => {
    etcd = await startEtcdCluster({ size });
  });
  after(async () => {
    for (const server of running) {
      server.child.kill('SIGCONT');
      await killIfRunning(server);
    }
    await etcd?.stop();
    data.remove();
  });
  return {
    get etcd() {
      assert.ok(etcd, 'the etcd cluster runs from before() to after()');
      return etcd;
    },
    dataDir: data.dir,
    running,
  };
}

export interface Instances {
  servers: ServerProcess[];
  /** The flags every instance started with, to start one again alike. */
  args: string[];
}

/** Starts `count` instances on the cluster, under `prefix`, sharing `dataDir` (unused on etcd). */
export async function startInstances(
  count: number,
  dataDir: string,
  endpoints: readonly string[],
  prefix: string,
  extra: string[] = [],
  into: ServerProcess[] = [],
): Promise<Instances> {
  const args = etcdServeArgs(endpoints, prefix, extra);
  const servers: ServerProcess[] = [];
  for (let i = 0; i < count; i++) {
    const server = await spawnServer(dataDir, args);
    // Tracked as soon as it runs (`into`), so cleanup finds it even if a later one fails to start.
    into.push(server);
    servers.push(server);
  }
  return { servers, args };
}

export async function clusterStatus(server: ServerProcess): Promise<ClusterStatus> {
  const status = await call<{ cluster: ClusterStatus }>(server.url, 'GET', '/v1/admin/status', { key: adminKey });
  assert.equal(status.status, 200, JSON.stringify(status.body));
  return status.body.cluster;
}

/** True when every instance sees all of them, serves what it holds, and the shards are all owned, evenly. */
function settled(statuses: ClusterStatus[]): boolean {
  const count = statuses.length;
  const share = Math.ceil(clusterShardsCount / count);
  const serving = statuses.reduce((sum, status) => sum + status.shardsServing, 0);
  return (
    statuses.every(
      (status) =>
        status.connected &&
        status.members.length === count &&
        status.shardsHeld === status.shardsServing &&
        status.shardsServing >= share - count &&
        status.shardsServing <= share,
    ) && serving === clusterShardsCount
  );
}

/** Waits until the instances have spread every shard between them; returns each one's status. */
export async function waitSettled(servers: readonly ServerProcess[]): Promise<ClusterStatus[]> {
  const deadline = Date.now() + settleWaitMsMax;
  for (;;) {
    const statuses = await Promise.all(servers.map(clusterStatus));
    if (settled(statuses)) return statuses;
    assert.ok(Date.now() < deadline, `the shards did not settle: ${JSON.stringify(statuses)}`);
    await sleep(settlePollMs);
  }
}

/** The member id that owns the SKU's shard now, from the owner key in etcd; undefined when none does. */
export async function ownerIdOf(endpoint: string, prefix: string, sku: string): Promise<string | undefined> {
  const key = Buffer.from(`${prefix}${keys.shardOwner(shardOf(sku))}`).toString('base64');
  const response = await fetch(`${endpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key }),
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await response.json()) as { kvs?: { value: string }[] };
  const value = body.kvs?.[0]?.value;
  return value === undefined
    ? undefined
    : (JSON.parse(Buffer.from(value, 'base64').toString()) as { owner: string }).owner;
}

/** The instance that owns the SKU now, and the others. */
export async function ownerAndOthers(
  servers: readonly ServerProcess[],
  endpoint: string,
  prefix: string,
  sku: string,
): Promise<{ owner: ServerProcess; others: ServerProcess[] }> {
  const ownerId = await ownerIdOf(endpoint, prefix, sku);
  const ids = await Promise.all(servers.map(async (server) => (await clusterStatus(server)).memberId));
  const index = ids.indexOf(ownerId ?? '');
  assert.ok(index >= 0, `no instance owns SKU ${sku} (owner ${ownerId})`);
  return { owner: servers[index]!, others: servers.filter((_, i) => i !== index) };
}

/** A counter's value in an instance's /metrics (0 when absent). */
export async function metricValue(server: ServerProcess, series: string): Promise<number> {
  const metrics = await call<string>(server.url, 'GET', '/metrics');
  const line = metrics.body.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

export interface HotSkuInstances {
  servers: ServerProcess[];
  /** The instance that owns the SKU, and the others (each of which knows the SKU already). */
  owner: ServerProcess;
  others: ServerProcess[];
}

/**
 * `count` instances on the fixture's cluster under `prefix`, settled, with
 * `sku` created (`stock` units) and known to every instance: who owns it?
 */
export async function instancesWithSku(
  fixture: ClusterFixture,
  options: { count: number; prefix: string; sku: string; stock: number; extra: string[] },
): Promise<HotSkuInstances> {
  const endpoints = fixture.etcd.endpoints;
  const { servers } = await startInstances(
    options.count,
    fixture.dataDir,
    endpoints,
    options.prefix,
    options.extra,
    fixture.running,
  );
  await waitSettled(servers);
  await createSku(servers[0]!.url, options.sku, { initialStock: options.stock });
  const { owner, others } = await ownerAndOthers(servers, endpoints[0]!, options.prefix, options.sku);
  for (const server of others) {
    while ((await call(server.url, 'GET', `/v1/skus/${options.sku}`)).status !== 200) await sleep(20);
  }
  return { servers, owner, others };
}
