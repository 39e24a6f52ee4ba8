// Prometheus instruments, one registry per server so tests can run several.
//
// Names are part of the operating contract (dashboards and alerts in ops/ use
// them): they do not change. Units come last (`_seconds`, `_bytes`,
// `_units`), `_total` ends counters and nothing else, and the standard Node.js
// metrics keep their standard names (`process_*`, `nodejs_*`), so stock
// Node.js dashboards work on hotstock as they are.
import { statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import packageJson from '../package.json' with { type: 'json' };
import { mirrorOutboxEntriesWarn } from './constants.ts';
import type { Engine } from './engine/engine.ts';
import type { Operation, OperationResult } from './engine/operations.ts';
import { SkuStockGauges } from './metrics-sku-stock.ts';
import type { BackendBreaker, BreakerState } from './store/backend-breaker.ts';
import type { CountingStore } from './store/counting-store.ts';
import type { WatchHub } from './watch/hub.ts';
import type { DropReason } from './watch/sse.ts';

/**
 * Latency buckets in seconds. A reservation answered from memory takes tens
 * of microseconds and an fsync ~0.3 ms, so the low end resolves below a
 * millisecond; flash-sale tails reach 100-300 ms, etcd commits time out at
 * 5 s and requests at 30 s, so the high end resolves the tail up to there.
 * 0.1 and 0.25 are the thresholds the commit-latency alert and the latency
 * SLO use (ops/prometheus), so both are exact.
 */
const latencyBucketsSeconds = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
/** GC pauses: minor ones take well under a millisecond to a few, major ones and stalls up to seconds. */
const gcBucketsSeconds = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const batchSizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
const breakerStates: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];
/**
 * prom-client's gauges that end in `_total`; each has a twin without the
 * suffix, labelled by type, whose sum is the same number.
 */
const totalNamedGauges = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** What the cluster gauges show. */
export interface ClusterFigures {
  members: number;
  shardsServing: number;
}

/** Fastify spells a literal colon in a route as `::` (`/v1/orders::batch`); the label shows the path clients call. */
export function routeLabel(url: string | undefined): string {
  if (url === undefined) return 'unmatched';
  return url.includes('::') ? url.replaceAll('::', ':') : url;
}

/** The name an operation is counted under: the transition's action, else its kind. */
function operationName(op: Operation): string {
  return op.kind === 'transition' ? op.action : op.kind;
}

/** A gauge whose value is read when Prometheus scrapes, never kept up to date on the hot path. */
function sampledGauge(registry: Registry, name: string, help: string, read: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const value = read();
      if (value === undefined) this.reset();
      else this.set(value);
    },
  });
}

function counter<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

function histogram<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  buckets: number[],
  labelNames: readonly L[] = [],
): Histogram<L> {
  return new Histogram({ name, help, buckets, labelNames, registers: [registry] });
}

/** What the cutover (a mirror, moves, routing) shows on a scrape; see cutover/. */
export interface CutoverFigures {
  mirrors(): { from: string; to: string; lagRevisions: number; lagSeconds: number; applied: number }[];
  outboxes(): { store: string; entries: number }[];
  movesByState(): Record<string, number>;
  skusByStore(): Record<string, number>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly sources: {
    queueDepth?: () => number;
    watch?: WatchHub;
    shedding?: () => boolean;
    cutover?: CutoverFigures;
    cluster?: () => ClusterFigures;
  } = {};

  // ---- HTTP ----
  readonly httpRequestDuration = histogram(
    this.registry,
    'hotstock_http_request_duration_seconds',
    'HTTP request latency by route, method and status (its _count is the request rate)',
    latencyBucketsSeconds,
    ['route', 'method', 'status'] as const,
  );
  /**
   * Latency series by `route method status`: bounded by the routes, the
   * methods Node's parser knows, and the statuses the API answers.
   */
  private readonly durationSeries = new Map<string, { observe(seconds: number): void }>();
  readonly httpProblems = counter(
    this.registry,
    'hotstock_http_problems_total',
    'Error responses (application/problem+json) by route, method, status and catalogue code',
    ['route', 'method', 'status', 'code'] as const,
  );
  readonly shed = counter(
    this.registry,
    'hotstock_requests_shed_total',
    'Requests answered 503 overloaded before any work: event_loop_lag (the process is behind) or queue (a SKU queue is full or too slow)',
    ['reason'] as const,
  );
  readonly rateLimited = counter(
    this.registry,
    'hotstock_requests_rate_limited_total',
    'Requests answered 429 rate_limited before any work: client_quota (the API key) or user_attempts (a user on a SKU)',
    ['reason'] as const,
  );

  // ---- engine ----
  readonly reservations = counter(
    this.registry,
    'hotstock_reservations_total',
    'Reservations decided: created, or the rejection code (idempotent replays are not counted here)',
    ['result'] as const,
  );
  readonly replays = counter(
    this.registry,
    'hotstock_idempotent_replays_total',
    'Requests answered with the recorded answer of an earlier request with the same Idempotency-Key, by operation',
    ['operation'] as const,
  );
  readonly transitions = counter(
    this.registry,
    'hotstock_order_transitions_total',
    'Order transitions decided, by action and result (ok or the rejection code)',
    ['action', 'result'] as const,
  );
  readonly expiries = counter(
    this.registry,
    'hotstock_reservations_expired_total',
    'Reservations released by the sweeper because they were not paid in time',
  );
  readonly commitDuration = histogram(
    this.registry,
    'hotstock_store_commit_duration_seconds',
    'Time from handing a batch to the store to its durable commit',
    latencyBucketsSeconds,
  );
  readonly batchSize = histogram(
    this.registry,
    'hotstock_batch_operations',
    'Operations decided and committed together in one SKU batch',
    batchSizeBuckets,
  );
  readonly storeFailures = counter(
    this.registry,
    'hotstock_store_failures_total',
    'Commits the store refused with an error (not version conflicts)',
  );
  readonly feedGaps = counter(
    this.registry,
    'hotstock_change_feed_gaps_total',
    'Times the change feed lost commits (etcd compaction) and the engine re-warmed every SKU',
  );
  readonly queueDepth = sampledGauge(
    this.registry,
    'hotstock_engine_queue_depth',
    'Operations waiting in SKU queues',
    () => this.sources.queueDepth?.() ?? 0,
  );
  readonly eventLoopShedding = sampledGauge(
    this.registry,
    'hotstock_event_loop_shedding',
    '1 while mutations are shed because the event loop is behind (--shed-event-loop-lag-ms), else 0',
    () => (this.sources.shedding?.() ? 1 : 0),
  );

  // ---- storage backend ----
  readonly breakerState = new Gauge({
    name: 'hotstock_backend_breaker_state',
    help: 'Circuit breaker around the storage backend: 1 on the current state (closed, open, half-open, isolated)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly breakerOpened = counter(
    this.registry,
    'hotstock_backend_breaker_opened_total',
    'Times the circuit breaker around the storage backend opened',
  );

  // ---- cluster (distributed mode) ----
  readonly clusterForwarded = counter(
    this.registry,
    'hotstock_cluster_forwarded_operations_total',
    'Mutations sent to the instance that owns their SKU, by outcome: answered; refused (it no longer owned the SKU, nothing applied, routed again); failed (no answer, the client got 503)',
    ['outcome'] as const,
  );
  readonly clusterFenceRefusals = counter(
    this.registry,
    'hotstock_cluster_fence_refusals_total',
    'Commits refused because this instance did not own the SKU: by its own view (local) or by etcd, whose compare on the shard owner key failed (etcd)',
    ['check'] as const,
  );
  readonly clusterHandOvers = counter(
    this.registry,
    'hotstock_cluster_shard_handovers_total',
    'Shards this instance took (acquired) or handed over after its batches landed (released)',
    ['direction'] as const,
  );
  readonly clusterMembers = sampledGauge(
    this.registry,
    'hotstock_cluster_members',
    'Live instances this instance sees in the cluster (distributed mode)',
    () => this.sources.cluster?.().members,
  );
  readonly clusterShardsOwned = sampledGauge(
    this.registry,
    'hotstock_cluster_shards_owned',
    'Shards of SKUs whose writes this instance serves now (distributed mode)',
    () => this.sources.cluster?.().shardsServing,
  );

  private readonly skuStock = new SkuStockGauges(this.registry);

  // ---- cutover: mirror, moves, shadow reads ----
  readonly shadowReads = counter(
    this.registry,
    'hotstock_shadow_reads_total',
    'Shadow reads compared with the mirror, by result: match, mismatch, error (the mirror could not be read), skipped (not compared in time, or too many at once)',
    ['result'] as const,
  );
  readonly mirrorBreakerState = new Gauge({
    name: 'hotstock_mirror_breaker_state',
    help: 'Circuit breaker of each mirror direction (from -> to): 1 on the current state (closed, open, half-open, isolated)',
    labelNames: ['from', 'to', 'state'] as const,
    registers: [this.registry],
  });

  constructor() {
    new Gauge({
      name: 'hotstock_build_info',
      help: 'Always 1; the labels say which hotstock and which Node.js runtime this is',
      labelNames: ['version', 'node_version'] as const,
      registers: [this.registry],
    }).set({ version: packageJson.version, node_version: process.version }, 1);
    this.registerWatchMetrics();
    this.registerCutoverMetrics();
    collectDefaultMetrics({ register: this.registry, gcDurationBuckets: gcBucketsSeconds });
    for (const name of totalNamedGauges) this.registry.removeSingleMetric(name);
  }

  /** Queue depth is read when Prometheus scrapes, not tracked on every enqueue. */
  watchQueueDepth(source: () => number): void {
    this.sources.queueDepth = source;
  }

  followShedder(shedding: () => boolean): void {
    this.sources.shedding = shedding;
  }

  /** Cluster membership and ownership, read on scrape. */
  followCluster(figures: () => ClusterFigures): void {
    this.sources.cluster = figures;
  }

  followWatch(hub: WatchHub): void {
    this.sources.watch = hub;
  }

  /** Per-SKU stock gauges for the most recently changed SKUs (see metrics-sku-stock.ts). */
  followStock(engine: Engine): void {
    this.skuStock.follow(engine);
  }

  /** The embedded store's file against its map size, and the filesystem it lives on. */
  followDataDir(dataDir: string, mapSizeBytes: number): void {
    const statOrUndefined = <T>(read: () => T): T | undefined => {
      try {
        return read();
      } catch {
        // Not there yet (or gone): the gauge is left out of this scrape rather than reporting 0.
        return undefined;
      }
    };
    // LMDB's data file grows as pages are used and never past the map size; the map full is a write error.
    sampledGauge(this.registry, 'hotstock_lmdb_file_size_bytes', 'Size of the LMDB data file (data.mdb)', () =>
      statOrUndefined(() => statSync(join(dataDir, 'data.mdb')).size),
    );
    sampledGauge(
      this.registry,
      'hotstock_lmdb_map_size_bytes',
      'LMDB map size: the most the data file can grow to',
      () => mapSizeBytes,
    );
    const filesystem = () => statOrUndefined(() => statfsSync(dataDir));
    sampledGauge(
      this.registry,
      'hotstock_data_filesystem_avail_bytes',
      'Bytes available to hotstock on the filesystem holding --data-dir',
      () => {
        const stats = filesystem();
        return stats && stats.bavail * stats.bsize;
      },
    );
    sampledGauge(
      this.registry,
      'hotstock_data_filesystem_size_bytes',
      'Size of the filesystem holding --data-dir',
      () => {
        const stats = filesystem();
        return stats && stats.blocks * stats.bsize;
      },
    );
  }

  /** One answered request: its latency, and its problem code when it was an error. */
  requestAnswered(
    url: string | undefined,
    method: string,
    statusCode: number,
    problemCode: string | undefined,
    seconds: number,
  ): void {
    const series = `${url} ${method} ${statusCode}`;
    let duration = this.durationSeries.get(series);
    if (duration === undefined) {
      // One child per (route, method, status), kept: prom-client hashes the labels of every call otherwise.
      duration = this.httpRequestDuration.labels({ route: routeLabel(url), method, status: String(statusCode) });
      this.durationSeries.set(series, duration);
    }
    duration.observe(seconds);
    if (problemCode !== undefined) {
      this.httpProblems.inc({ route: routeLabel(url), method, status: String(statusCode), code: problemCode });
    }
  }

  batchCommitted(skuId: string, batchSize: number, commitMs: number): void {
    this.skuStock.changed(skuId);
    this.batchSize.observe(batchSize);
    this.commitDuration.observe(commitMs / 1000);
  }

  /** Replays are counted apart, so `hotstock_reservations_total` counts each reservation decided once. */
  operationDecided(op: Operation, result: OperationResult): void {
    if (result.ok && result.replayed) {
      this.replays.inc({ operation: operationName(op) });
      return;
    }
    if (!result.ok && result.code === 'overloaded') this.shed.inc({ reason: 'queue' });
    const outcome = result.ok ? 'ok' : result.code;
    if (op.kind === 'reserve') this.reservations.inc({ result: outcome === 'ok' ? 'created' : outcome });
    else if (op.kind === 'transition') this.transitions.inc({ action: op.action, result: outcome });
    else if (op.kind === 'expire' && result.ok) this.expiries.inc();
  }

  storeFailed(): void {
    this.storeFailures.inc();
  }

  /**
   * Writes and version checks the commits sent to the store carried: what
   * each reservation costs the store (the benchmark divides them by the
   * reservations it made). Read on scrape from the counting store.
   */
  countStore(store: CountingStore): void {
    runningTotal(
      this.registry,
      'hotstock_store_writes_total',
      'Writes (puts and deletes) in the commits sent to the store',
      () => store.writes,
    );
    runningTotal(
      this.registry,
      'hotstock_store_checks_total',
      'Version checks in the commits sent to the store',
      () => store.checks,
    );
  }

  /** Follows a breaker's state; every state is exported so a dashboard can plot each. */
  watchBreaker(breaker: BackendBreaker): void {
    showBreakerState(this.breakerState, {}, breaker.state);
    breaker.onStateChange((state) => {
      if (state === 'open') this.breakerOpened.inc();
      showBreakerState(this.breakerState, {}, state);
    });
  }

  /** The cutover's figures (mirror lag, outboxes, moves, routing), read when Prometheus scrapes. */
  followCutover(figures: CutoverFigures): void {
    this.sources.cutover = figures;
  }

  /** A mirror direction's breaker, like the backend's. */
  watchMirrorBreaker(from: string, to: string, breaker: BackendBreaker): void {
    showBreakerState(this.mirrorBreakerState, { from, to }, breaker.state);
    breaker.onStateChange((state) => showBreakerState(this.mirrorBreakerState, { from, to }, state));
  }

  private registerCutoverMetrics(): void {
    const figures = () => this.sources.cutover;
    labelledGauge(
      this.registry,
      'hotstock_mirror_lag_revisions',
      'Commits recorded in the outbox of the authoritative store (from) that the mirror (to) has not applied yet',
      ['from', 'to'],
      () =>
        figures()
          ?.mirrors()
          .map((m) => ({ labels: { from: m.from, to: m.to }, value: m.lagRevisions })),
    );
    labelledGauge(
      this.registry,
      'hotstock_mirror_lag_seconds',
      'Age of the oldest commit the mirror (to) has not applied yet; 0 when it holds everything',
      ['from', 'to'],
      () =>
        figures()
          ?.mirrors()
          .map((m) => ({ labels: { from: m.from, to: m.to }, value: m.lagSeconds })),
    );
    const appliedSeen = new Map<string, number>();
    new Counter({
      name: 'hotstock_mirror_applied_total',
      help: 'Outbox entries (commits of the authoritative store) the mirror has applied',
      labelNames: ['from', 'to'] as const,
      registers: [this.registry],
      collect() {
        for (const mirror of figures()?.mirrors() ?? []) {
          const series = `${mirror.from} ${mirror.to}`;
          this.inc({ from: mirror.from, to: mirror.to }, mirror.applied - (appliedSeen.get(series) ?? 0));
          appliedSeen.set(series, mirror.applied);
        }
      },
    });
    labelledGauge(
      this.registry,
      'hotstock_mirror_outbox_entries',
      'Outbox entries a store holds: recorded and not yet applied to the mirror and deleted',
      ['store'],
      () =>
        figures()
          ?.outboxes()
          .map((o) => ({ labels: { store: o.store }, value: o.entries })),
    );
    sampledGauge(
      this.registry,
      'hotstock_mirror_outbox_entries_limit',
      'Outbox entries past which the service logs an error and HotstockMirrorOutboxOverBound fires (commits go on)',
      () => (figures() === undefined ? undefined : mirrorOutboxEntriesWarn),
    );
    labelledGauge(
      this.registry,
      'hotstock_cutover_moves',
      'Moves known to this instance by state: pending, moving, rolling_back, done, failed (rolled back)',
      ['state'],
      () => Object.entries(figures()?.movesByState() ?? {}).map(([state, value]) => ({ labels: { state }, value })),
    );
    labelledGauge(this.registry, 'hotstock_cutover_skus', 'SKUs by the store authoritative for them', ['store'], () =>
      Object.entries(figures()?.skusByStore() ?? {}).map(([store, value]) => ({ labels: { store }, value })),
    );
  }

  /** Watch figures are kept by the hub as plain numbers (its hot loop touches no instrument) and read on scrape. */
  private registerWatchMetrics(): void {
    const hub = () => this.sources.watch;
    sampledGauge(
      this.registry,
      'hotstock_watch_subscribers',
      'Stock watchers (SSE streams) connected now',
      () => hub()?.subscriberCount ?? 0,
    );
    sampledGauge(
      this.registry,
      'hotstock_watch_subscribers_limit',
      'Stock watchers allowed at once (--watch-subscribers-max); past it new ones get 503 watch_full',
      () => hub()?.subscribersMax,
    );
    sampledGauge(
      this.registry,
      'hotstock_watch_buffered_bytes',
      'Bytes written to watcher sockets that the kernel has not taken yet',
      () => hub()?.bufferedBytes() ?? 0,
    );
    runningTotal(
      this.registry,
      'hotstock_watch_events_sent_total',
      'Events written to watchers, counted once per watcher',
      () => hub()?.stats.eventsSent,
    );
    runningTotal(
      this.registry,
      'hotstock_watch_events_coalesced_total',
      'Events a lagging watcher never got because a later state of the same SKU replaced them',
      () => hub()?.stats.eventsCoalesced,
    );
    const droppedSeen: Record<DropReason, number> = { lagging: 0, stalled: 0, shutdown: 0 };
    new Counter({
      name: 'hotstock_watch_subscribers_dropped_total',
      help: 'Watchers the server disconnected, by reason (lagging, stalled, shutdown)',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect() {
        for (const reason of Object.keys(droppedSeen) as DropReason[]) {
          const now = hub()?.stats.dropped[reason] ?? 0;
          this.inc({ reason }, now - droppedSeen[reason]);
          droppedSeen[reason] = now;
        }
      },
    });
  }
}

/** A labelled gauge whose series are read when Prometheus scrapes; undefined leaves it empty. */
/** Sets a breaker gauge to 1 on `current` and 0 on every other state, under the given labels. */
function showBreakerState<L extends string>(
  gauge: Gauge<L | 'state'>,
  labels: Partial<Record<L, string>>,
  current: BreakerState,
): void {
  for (const state of breakerStates)
    gauge.set({ ...labels, state } as Partial<Record<L | 'state', string>>, state === current ? 1 : 0);
}

function labelledGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => { labels: Record<string, string>; value: number }[] | undefined,
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, value } of read() ?? []) this.set(labels, value);
    },
  });
}

/** A counter that mirrors a running total kept elsewhere: each scrape adds what it grew by. */
function runningTotal(registry: Registry, name: string, help: string, read: () => number | undefined): Counter {
  let seen = 0;
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read() ?? 0;
      this.inc(now - seen);
      seen = now;
    },
  });
}
