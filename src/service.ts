// The composition root: store -> engine (warmed) -> sweeper -> HTTP server,
// and the shutdown that unwinds them in reverse: stop accepting, drain
// in-flight batches, stop the sweeper, close the store. On etcd, the cluster
// (src/cluster/) sits around them: its fence around the store, its router
// between the routes and the engine; it joins once the server listens and
// hands its shards over before the server stops. With --mirror, the cutover
// (src/cutover/) does instead: both stores behind their outboxes, the
// routing the engine commits each SKU by, mirror workers, moves and shadow
// reads. A service with a mirror is one instance, so the two never run
// together (config.ts refuses the flags, cutover.ts a live cluster).
import type { Etcd3 } from 'etcd3';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { seedDemoCatalog } from './catalog/demo.ts';
import { Cluster } from './cluster/cluster.ts';
import type { ServeConfig } from './config.ts';
import { lmdbMapSizeBytesDefault } from './constants.ts';
import { type CutoverAdmin, cutoverAdmin, cutoverFigures, singleStoreAdmin } from './cutover/admin.ts';
import { type Cutover, openCutover } from './cutover/cutover.ts';
import { startStandalone } from './cutover/standalone.ts';
import { Engine, type EngineObserver } from './engine/engine.ts';
import type { Mutations } from './engine/mutations.ts';
import { Sweeper } from './engine/sweeper.ts';
import { ClusterKeys } from './http/auth.ts';
import { LoadShedder } from './http/load-shedder.ts';
import { Quotas } from './http/quota.ts';
import { buildServer } from './http/server.ts';
import { ensureLayout } from './layout.ts';
import { createLogger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { Secrets } from './secrets.ts';
import { BackendBreaker } from './store/backend-breaker.ts';
import { FenceRefusal, type Store } from './store/contract.ts';
import { CountingStore } from './store/counting-store.ts';
import { countsAsEtcdFailure, createEtcdClient, EtcdStore } from './store/etcd-store.ts';
import { assertClusterFit } from './store/etcd-topology.ts';
import { LmdbStore } from './store/lmdb-store.ts';
import { type StoreStatusDeps, storeStatus } from './store/status.ts';
import { WatchHub } from './watch/hub.ts';

export interface Service {
  app: FastifyInstance;
  engine: Engine;
  store: Store;
  /** Set when the service runs with a mirror. */
  cutover: Cutover | undefined;
  sweeper: Sweeper;
  shedder: LoadShedder;
  metrics: Metrics;
  watch: WatchHub;
  /** Base URL the server listens on, e.g. http://127.0.0.1:8080 */
  url: string;
  seededSkus: number;
  /** SIGHUP: re-read the keys file and the TLS certificate (see secrets.ts). */
  reload(): void;
  close(): Promise<void>;
}

/** The engine reports to metrics; store failures are also logged, once per failed batch. */
function engineObserver(metrics: Metrics, log: Logger): EngineObserver {
  return {
    batchCommitted: (skuId, size, commitMs) => metrics.batchCommitted(skuId, size, commitMs),
    operationDecided: (op, result) => metrics.operationDecided(op, result),
    storeFailed: (error) => {
      // Not a failure: the SKU moved to another instance, which the router sends the batch to (counted by the fence).
      if (error instanceof FenceRefusal) return;
      metrics.storeFailed();
      log.error({ err: error }, 'store commit failed; the batch was answered 503');
    },
    feedGapped: (gap, rewarmError) => {
      metrics.feedGaps.inc();
      if (rewarmError === undefined) log.warn({ gap }, 'change feed lost commits; every SKU was re-warmed');
      else log.error({ gap, err: rewarmError }, 'change feed lost commits and re-warming failed');
    },
  };
}

interface OpenedStore {
  store: Store;
  admin: Omit<StoreStatusDeps, 'store'>;
  /** On etcd: the client and namespace, which the cluster's leases use too. */
  etcd?: { client: Etcd3; prefix: string };
}

/**
 * A configured store (--store, or --mirror). For etcd: check the cluster
 * first (refuse a pseudo cluster, a wrong member count or a NOSPACE alarm;
 * warn about unreachable endpoints and a nearly full quota), then put every
 * call behind the breaker.
 */
async function openStore(
  config: Readonly<ServeConfig>,
  kind: ServeConfig['store'],
  log: Logger,
  metrics: Metrics,
): Promise<OpenedStore> {
  if (kind === 'lmdb' || config.etcd === undefined) {
    const mapSizeBytes = lmdbMapSizeBytesDefault;
    metrics.followDataDir(config.dataDir, mapSizeBytes);
    return {
      store: new LmdbStore({ dataDir: config.dataDir, mapSizeBytes }),
      admin: { breaker: undefined, etcd: undefined },
    };
  }
  const etcd = config.etcd;
  const connection = { endpoints: etcd.endpoints, ...(etcd.tls ? { tls: etcd.tls } : {}) };
  const report = await assertClusterFit(connection, { expectMembers: etcd.expectMembers, quotaBytes: etcd.quotaBytes });
  for (const warning of report.warnings) log.warn(warning);
  log.info(
    {
      endpoints: etcd.endpoints,
      members: report.members.map((member) => member.name),
      dbSizeBytes: report.dbSizeBytes,
      quotaBytes: report.quotaBytes,
    },
    'etcd cluster checked',
  );
  const breaker = new BackendBreaker({
    ...config.breaker,
    counts: countsAsEtcdFailure,
  });
  breaker.onStateChange((state) => log.warn({ state }, `etcd circuit breaker ${state}`));
  metrics.watchBreaker(breaker);
  const client = createEtcdClient(connection);
  const store = new EtcdStore({
    client,
    ownsClient: true,
    prefix: etcd.prefix,
    maxTxnOps: etcd.maxTxnOps,
    breaker,
  });
  return {
    store,
    admin: {
      breaker,
      etcd: { connection, prefix: etcd.prefix, expectMembers: etcd.expectMembers, quotaBytes: etcd.quotaBytes },
    },
    etcd: { client, prefix: etcd.prefix },
  };
}

/** The --mirror store opened beside --store, both handed to the cutover. */
async function openMirrored(config: Readonly<ServeConfig>, home: Store, log: Logger, metrics: Metrics) {
  const mirror = await openStore(config, config.mirror!, log, metrics);
  const etcd = config.etcd;
  const etcdOf = (store: Store) =>
    store.kind === 'etcd' && etcd !== undefined
      ? {
          connection: { endpoints: etcd.endpoints, ...(etcd.tls ? { tls: etcd.tls } : {}) },
          prefix: etcd.prefix,
          maxTxnOps: etcd.maxTxnOps,
        }
      : undefined;
  try {
    return await openCutover(
      config,
      { store: home, etcd: etcdOf(home) },
      { store: mirror.store, etcd: etcdOf(mirror.store) },
      log,
      metrics,
    );
  } catch (error) {
    await Promise.all([home.close(), mirror.store.close()]);
    throw error;
  }
}

interface ComposedStore {
  /** What the engine, the sweeper and the watch use: counted, and on etcd fenced or, with a mirror, behind its outbox. */
  store: Store;
  cluster: Cluster | undefined;
  cutover: Cutover | undefined;
}

/**
 * The store as the service uses it: counted for the metrics; then with a
 * mirror, behind its outbox (the engine commits each SKU through its own
 * store's outbox); otherwise on etcd, fenced by shard ownership.
 */
async function composeStore(
  opened: OpenedStore,
  config: Readonly<ServeConfig>,
  log: Logger,
  metrics: Metrics,
): Promise<ComposedStore> {
  const counting = new CountingStore(opened.store);
  metrics.countStore(counting);
  if (config.mirror !== undefined) {
    const cutover = await openMirrored(config, counting, log, metrics);
    return { store: cutover.home, cluster: undefined, cutover };
  }
  if (opened.etcd === undefined || config.cluster === undefined) {
    return { store: counting, cluster: undefined, cutover: undefined };
  }
  const cluster = new Cluster({ ...opened.etcd, feed: opened.store, config: config.cluster, log, metrics });
  return { store: cluster.fence(counting), cluster, cutover: undefined };
}

/** Moves and shadow reads work through the engine: made once it exists, and reported on /metrics. */
function attachCutover(cutover: Cutover | undefined, engine: Engine, metrics: Metrics): CutoverAdmin | undefined {
  if (cutover === undefined) return undefined;
  const { moves, shadow } = cutover.attach(engine);
  const mirrors = () => cutover.workers.map((worker) => worker.status());
  metrics.followCutover(cutoverFigures(engine, cutover.routing, mirrors, moves));
  return cutoverAdmin(engine, cutover.routing, mirrors, moves, shadow);
}

/**
 * The live heap once warm, when the runtime lets us collect first (node
 * --expose-gc): what the scale benchmark reads to show orders stay on disk.
 */
function heapAfterGc(): { heapUsedAfterGcBytes?: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return {};
  gc();
  return { heapUsedAfterGcBytes: process.memoryUsage().heapUsed };
}

/** Whether the service is ready (after the start) and whether it is closing (it refuses new requests then). */
interface Lifecycle {
  ready: boolean;
  closing: boolean;
}

/** Everything the service is made of, built and wired but not started. */
interface Parts {
  config: Readonly<ServeConfig>;
  metrics: Metrics;
  store: Store;
  cluster: Cluster | undefined;
  cutover: Cutover | undefined;
  engine: Engine;
  mutations: Mutations;
  shedder: LoadShedder;
  watch: WatchHub;
  secrets: Secrets;
  app: FastifyInstance;
  sweeper: Sweeper;
}

async function buildParts(config: Readonly<ServeConfig>, lifecycle: Lifecycle): Promise<Parts> {
  const metrics = new Metrics();
  const log = createLogger(config.logLevel);
  const opened = await openStore(config, config.store, log, metrics);
  const { store, cluster, cutover } = await composeStore(opened, config, log, metrics);
  const engine = new Engine(
    store,
    {
      reservationTtlMs: config.reservationTtlMs,
      idempotencyTtlMs: config.idempotencyTtlMs,
      shedQueueWaitMs: config.shedQueueWaitMs,
      routing: cutover?.routing,
    },
    engineObserver(metrics, log),
  );
  const mutations: Mutations = cluster?.route(engine) ?? engine;
  metrics.watchQueueDepth(() => engine.queueDepth);
  const routingAdmin = attachCutover(cutover, engine, metrics) ?? singleStoreAdmin(engine, config.store);
  const shedder = new LoadShedder(config.shedEventLoopLagMs, (shedding, lagMs) =>
    log.warn(
      { lagMs },
      shedding ? 'event loop behind: shedding mutations' : 'event loop caught up: no longer shedding',
    ),
  );
  const watch = new WatchHub(store, {
    subscribersMax: config.watchSubscribersMax,
    heartbeatIntervalMs: config.watchHeartbeatIntervalMs,
  });
  metrics.followWatch(watch);
  metrics.followShedder(() => shedder.shedding);
  const secrets = new Secrets(config, log);
  const quotas = new Quotas({
    userAttemptsPerMinute: config.userAttemptsPerMinute,
    onRefused: (reason) => metrics.rateLimited.inc({ reason }),
  });
  const app = await buildServer({
    engine,
    mutations,
    internal: cluster && {
      keys: new ClusterKeys(config.cluster!.keys),
      serve: (ops) => cluster.serveForwarded(ops),
    },
    metrics,
    apiKeys: secrets.apiKeys,
    quotas,
    cursors: secrets.cursors,
    tls: secrets.tls,
    watch,
    watchPublic: config.watchPublic,
    isReady: () => lifecycle.ready,
    isClosing: () => lifecycle.closing,
    isShedding: () => shedder.shedding,
    logger: log,
    adminStatus: async () => ({
      ...(await storeStatus({ store, ...opened.admin })),
      ...(cluster ? { cluster: cluster.status() } : {}),
    }),
    cutover: routingAdmin,
    shadow: cutover?.shadow,
  });
  const sweeper = new Sweeper(
    engine,
    config.sweepIntervalMs,
    (error) => app.log.error({ err: error }, 'sweep failed'),
    // Each instance sweeps the reservations and idempotency records of the SKUs it writes.
    cluster && ((skuId) => cluster.serves(skuId)),
  );
  return { config, metrics, store, cluster, cutover, engine, mutations, shedder, watch, secrets, app, sweeper };
}

/**
 * Starts the parts in order: layout, change feed, warm state, watch, the
 * cluster's view or the mirror workers and interrupted moves, timers, the
 * listener; then, on etcd, joins the cluster. Returns where it listens, what
 * it seeded, and how to stop following the feed.
 */
async function bringUp(parts: Parts): Promise<{ url: string; seededSkus: number; unfollow: () => void }> {
  const { config, store, engine, cluster, cutover, watch, app } = parts;
  let unfollow = () => {};
  try {
    // A store holding another layout is refused before anything reads it; an empty one is marked.
    await ensureLayout(store, { create: true });
    // A store that served with a mirror runs alone only if it holds everything (cutover/standalone.ts).
    if (cutover === undefined) await startStandalone(store);
    // Follow the change feed from the current revision before the warm-up scan: the scan reads
    // page by page, and a change to a page already read must still arrive.
    await store.revision();
    unfollow = engine.followStore();
    const skus = await engine.warm();
    await watch.start();
    await cluster?.start();
    await cutover?.start();
    const seed = async () => (config.demo ? seedDemoCatalog(engine, parts.mutations) : 0);
    let seededSkus = cluster ? 0 : await seed();
    parts.metrics.followStock(engine);
    parts.sweeper.start();
    parts.shedder.start();
    const url = await app.listen({ host: config.host, port: config.port });
    if (cluster) {
      // Peers need this instance's address before it can own anything; the demo catalog needs owners.
      await cluster.join(url);
      seededSkus = await seed();
    }
    app.log.info({ skus, seededSkus, revision: await store.revision(), ...heapAfterGc() }, 'engine warm');
    return { url, seededSkus, unfollow };
  } catch (error) {
    // A failed start releases what it took (feeds, timers, the lease, the store's client), so the process can exit.
    await parts.sweeper.stop();
    parts.shedder.stop();
    watch.close();
    cluster?.close();
    unfollow();
    await app.close();
    await cutover?.stop();
    await (cutover ? cutover.close() : store.close());
    throw error;
  }
}

/**
 * Stops in reverse: on etcd, hands every shard over while still serving (so
 * requests on their way here go to the new owners); then stops accepting,
 * answers what is in flight, stops a move under way (the SKUs it fenced go on
 * where they are), lets the writers finish their batches, and closes the
 * store (with a mirror: lets the mirror catch up, bounded, and closes both).
 * The grace period bounds each step; the store closes either way.
 */
async function shutDown(parts: Parts, lifecycle: Lifecycle, unfollow: () => void): Promise<void> {
  lifecycle.ready = false;
  const grace = AbortSignal.timeout(parts.config.shutdownGraceMs);
  const graceElapsed = new Promise<void>((resolve) => grace.addEventListener('abort', () => resolve()));
  await parts.cluster?.leave(grace);
  lifecycle.closing = true;
  await Promise.race([parts.app.close(), graceElapsed]);
  await Promise.race([parts.cutover?.stop(), graceElapsed]);
  await Promise.race([parts.engine.drain(), graceElapsed]);
  await parts.sweeper.stop();
  parts.shedder.stop();
  parts.watch.close();
  unfollow();
  await (parts.cutover ? parts.cutover.close() : parts.store.close());
}

export async function startService(config: Readonly<ServeConfig>): Promise<Service> {
  const lifecycle: Lifecycle = { ready: false, closing: false };
  const parts = await buildParts(config, lifecycle);
  const { url, seededSkus, unfollow } = await bringUp(parts);
  lifecycle.ready = true;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= shutDown(parts, lifecycle, unfollow);
    return closing;
  };
  const { app, engine, store, cutover, sweeper, shedder, metrics, watch, secrets } = parts;
  const reload = () => secrets.reload(config.tls ? (app.server as import('node:https').Server) : undefined);
  return { app, engine, store, cutover, sweeper, shedder, metrics, watch, url, seededSkus, reload, close };
}
