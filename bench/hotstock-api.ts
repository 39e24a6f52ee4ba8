// What the scenarios ask of a hotstock server besides load: create SKUs, read
// a SKU's ledger (the durable count of what was sold) and its /metrics
// counters, and run `hotstock check` (and `hotstock reconcile`) on a stopped
// server's data directory.
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { clusterShardsCount } from '../src/constants.ts';
import { runProcess } from './process.ts';
import type { BenchRow } from './scenario.ts';
import {
  benchAdminKey,
  benchClientKey,
  type HotstockServerOptions,
  type PinnedServer,
  startHotstock,
} from './servers.ts';
import { runWrk, type WrkResult } from './wrk.ts';

/** How long instances on etcd may take to split the shards of SKUs between them. */
const clusterSettleMsMax = 60_000;

const hotstockScript = fileURLToPath(new URL('../bin/hotstock.js', import.meta.url));
export const hotSku = 'hot';
/** Stock of the hot SKU: more than any run can sell, so no run ends sold out. */
export const hotSkuStock = 1_000_000_000;
/** SKUs are created this many at a time. */
const createConcurrency = 32;

export interface SkuLedger {
  total: number;
  reserved: number;
  sold: number;
  available: number;
}

export async function createSkus(
  url: string,
  skuIds: string[],
  initialStock: number,
  adminKey: string = benchAdminKey,
  maxPerUser: number | null = null,
): Promise<void> {
  const pool = new Pool(new URL(url).origin, { connections: createConcurrency });
  let next = 0;
  const worker = async () => {
    while (next < skuIds.length) {
      const sku = skuIds[next++]!;
      const response = await pool.request({
        path: `/v1/skus/${encodeURIComponent(sku)}`,
        method: 'PUT',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          product: 'bench-shirt',
          size: 'M',
          color: 'red',
          priceCents: 1999,
          maxPerUser,
          initialStock,
        }),
      });
      const text = await response.body.text();
      if (response.statusCode !== 201 && response.statusCode !== 200) {
        throw new Error(`creating SKU ${sku}: ${response.statusCode} ${text}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: createConcurrency }, worker));
  } finally {
    await pool.close();
  }
}

/** Waits until every instance at `urls` serves its share of the shards and they serve them all. */
export async function waitClusterSettled(urls: readonly string[]): Promise<void> {
  const deadline = Date.now() + clusterSettleMsMax;
  for (;;) {
    const serving = await Promise.all(
      urls.map(async (url) => {
        const response = await fetch(`${url}/v1/admin/status`, {
          headers: { authorization: `Bearer ${benchAdminKey}` },
        });
        const status = (await response.json()) as { cluster: { members: unknown[]; shardsServing: number } };
        return status.cluster.members.length === urls.length ? status.cluster.shardsServing : 0;
      }),
    );
    if (serving.every((shards) => shards > 0) && serving.reduce((a, b) => a + b, 0) === clusterShardsCount) return;
    if (Date.now() > deadline) throw new Error(`the shards did not settle: ${serving.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function skuLedger(url: string, sku: string): Promise<SkuLedger> {
  const response = await fetch(`${url}/v1/skus/${encodeURIComponent(sku)}`, {
    headers: { authorization: `Bearer ${benchAdminKey}` },
  });
  if (response.status !== 200) throw new Error(`reading SKU ${sku}: ${response.status} ${await response.text()}`);
  return (await response.json()) as SkuLedger;
}

/** Runs `hotstock check` on a data directory (the server must be stopped); true when the ledger is exact. */
export async function checkLedger(
  dataDir: string,
  extraArgs: string[] = [],
): Promise<{ exact: boolean; output: string }> {
  const run = await runProcess(process.execPath, [hotstockScript, 'check', '--data-dir', dataDir, ...extraArgs]);
  return { exact: run.code === 0, output: `${run.stdout}${run.stderr}`.trim() };
}

/** Runs `hotstock reconcile` on a stopped server's two stores; true when they hold the same records. */
export async function reconcileStores(
  dataDir: string,
  mirrorArgs: string[],
): Promise<{ clean: boolean; output: string }> {
  const run = await runProcess(process.execPath, [hotstockScript, 'reconcile', '--data-dir', dataDir, ...mirrorArgs]);
  return { clean: run.code === 0, output: `${run.stdout}${run.stderr}`.trim() };
}

export interface HotstockRun<T> {
  result: T;
  /** `hotstock check` after the server stopped. */
  check: { exact: boolean; output: string };
}

/**
 * Starts a pinned hotstock on a fresh data directory, runs `body` against it,
 * stops it cleanly, checks the ledger, and removes the directory.
 */
export async function withHotstock<T>(
  cpu: number,
  body: (server: PinnedServer) => Promise<T>,
  options: Omit<HotstockServerOptions, 'cpu' | 'dataDir'> = {},
): Promise<HotstockRun<T>> {
  const server = await startHotstock({ ...options, cpu });
  try {
    const result = await body(server);
    await server.stop();
    return { result, check: await checkLedger(server.dataDir) };
  } finally {
    await server.stop();
    server.remove();
  }
}

/** The row every scenario ends with: whether `hotstock check` found the ledger exact. */
export function checkRow(scenario: string, check: { exact: boolean; output: string }): BenchRow {
  return {
    scenario,
    measure: 'hotstock check',
    value: check.exact ? 1 : 0,
    target: { text: 'ledger exact', met: check.exact },
    note: check.output.split('\n').at(-1),
  };
}

/** The server's /metrics, as Prometheus text. */
async function metricsText(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status}`);
  return response.text();
}

/** One sample's value (`name{labels} value`); `fallback` when absent, or an error when there is none. */
function sample(text: string, series: string, fallback?: number): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  if (line !== undefined) return Number(line.slice(series.length + 1));
  if (fallback === undefined) throw new Error(`/metrics has no ${series}`);
  return fallback;
}

/** The LMDB -> etcd mirror's lag (commits not applied yet, and the oldest one's age), read from /metrics. */
export async function mirrorLag(url: string): Promise<{ revisions: number; seconds: number }> {
  const text = await metricsText(url);
  return {
    revisions: sample(text, 'hotstock_mirror_lag_revisions{from="lmdb",to="etcd"}', 0),
    seconds: sample(text, 'hotstock_mirror_lag_seconds{from="lmdb",to="etcd"}', 0),
  };
}

/** Requests the server shed with 503 `overloaded`, by reason, read from its /metrics. */
export async function shedCounts(url: string): Promise<{ eventLoopLag: number; queue: number }> {
  const text = await metricsText(url);
  return {
    eventLoopLag: sample(text, 'hotstock_requests_shed_total{reason="event_loop_lag"}', 0),
    queue: sample(text, 'hotstock_reservations_total{result="overloaded"}', 0),
  };
}

/** What the commits sent to the store carried, from the counting store's /metrics counters. */
export interface StoreCounts {
  writes: number;
  checks: number;
  /** Batches committed (each writes its SKU record once and checks it once). */
  commits: number;
}

export async function storeCounts(url: string): Promise<StoreCounts> {
  const text = await metricsText(url);
  return {
    writes: sample(text, 'hotstock_store_writes_total'),
    checks: sample(text, 'hotstock_store_checks_total'),
    commits: sample(text, 'hotstock_batch_operations_count'),
  };
}

export interface HotSkuLoad {
  cpu: number;
  durationS: number;
  connections: number;
  /** Reservations per request (orders:batch); single POST /v1/orders when absent. */
  batch?: number;
  /** The hot SKU's per-user limit; none when absent. */
  maxPerUser?: number;
  /** Distinct users the load takes turns with (orders.lua's default when absent). */
  users?: number;
}

export interface HotSkuRun {
  load: WrkResult;
  /** Units reserved, from the SKU's ledger. */
  reserved: number;
  /** What the store was sent during the load. */
  store: StoreCounts;
}

/**
 * The load most scenarios share: a SKU `hot` with stock that never runs out,
 * reserved on by wrk, the durable count read back from its ledger, and the
 * store writes and checks the load cost.
 */
export async function reserveOnHotSku(url: string, options: HotSkuLoad): Promise<HotSkuRun> {
  await createSkus(url, [hotSku], hotSkuStock, benchAdminKey, options.maxPerUser ?? null);
  const before = await storeCounts(url);
  const load = await runWrk({
    cpu: options.cpu,
    url,
    durationS: options.durationS,
    connections: options.connections,
    env: {
      BENCH_KEY: benchClientKey,
      BENCH_SKUS: hotSku,
      ...(options.batch === undefined ? {} : { BENCH_BATCH: String(options.batch) }),
      ...(options.users === undefined ? {} : { BENCH_USERS: String(options.users) }),
    },
  });
  const reserved = (await skuLedger(url, hotSku)).reserved;
  const after = await storeCounts(url);
  const store = {
    writes: after.writes - before.writes,
    checks: after.checks - before.checks,
    commits: after.commits - before.commits,
  };
  return { load, reserved, store };
}
