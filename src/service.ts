// The composition root: store -> engine (warmed) -> sweeper -> HTTP server,
// and the shutdown that unwinds them in reverse: stop accepting, drain
// in-flight batches, stop the sweeper, close the store.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { seedDemoCatalog } from './catalog/demo.ts';
import type { ServeConfig } from './config.ts';
import { lmdbMapSizeBytesDefault } from './constants.ts';
import { type CutoverAdmin, cutoverAdmin, cutoverFigures, singleStoreAdmin } from './cutover/admin.ts';
import { type Cutover, openCutover } from './cutover/cutover.ts';
import { startStandalone } from './cutover/standalone.ts';
import { Engine, type EngineObserver } from './engine/engine.ts';
import { Sweeper } from './engine/sweeper.ts';
import { LoadShedder } from './http/load-shedder.ts';
import { Quotas } from './http/quota.ts';
import { buildServer } from './http/server.ts';
import { ensureLayout } from './layout.ts';
import { createLogger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { Secrets } from './secrets.ts';
import { BackendBreaker } from './store/backend-breaker.ts';
import type { Store } from './store/contract.ts';
import { CountingStore } from './store/counting-store.ts';
import { createEtcdClient, EtcdStore, isNoSpaceError } from './store/etcd-store.ts';
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
    // Out of space is the backend answering, not failing: it gets its own error, not an open breaker.
    counts: (error) => !isNoSpaceError(error) && !(error instanceof Error && isNoSpaceError(error.cause)),
  });
  breaker.onStateChange((state) => log.warn({ state }, `etcd circuit breaker ${state}`));
  metrics.watchBreaker(breaker);
  const store = new EtcdStore({
    client: createEtcdClient(connection),
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

export async function startService(config: Readonly<ServeConfig>): Promise<Service> {
  const metrics = new Metrics();
  const log = createLogger(config.logLevel);
  const opened = await openStore(config, config.store, log, metrics);
  const counted = new CountingStore(opened.store);
  const admin = opened.admin;
  metrics.countStore(counted);
  // With a mirror, the engine commits each SKU through its own store's outbox (cutover/).
  const cutover = config.mirror ? await openMirrored(config, counted, log, metrics) : undefined;
  const store: Store = cutover?.home ?? counted;
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
  metrics.watchQueueDepth(() => engine.queueDepth);
  const cutoverAdmin = attachCutover(cutover, engine, metrics) ?? singleStoreAdmin(engine, config.store);
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
  let ready = false;
  let closingStarted = false;
  const secrets = new Secrets(config, log);
  const quotas = new Quotas({
    userAttemptsPerMinute: config.userAttemptsPerMinute,
    onRefused: (reason) => metrics.rateLimited.inc({ reason }),
  });
  const app = await buildServer({
    engine,
    metrics,
    apiKeys: secrets.apiKeys,
    quotas,
    cursors: secrets.cursors,
    tls: secrets.tls,
    watch,
    watchPublic: config.watchPublic,
    isReady: () => ready,
    isClosing: () => closingStarted,
    isShedding: () => shedder.shedding,
    logger: log,
    adminStatus: () => storeStatus({ store, ...admin }),
    cutover: cutoverAdmin,
    shadow: cutover?.shadow,
  });
  const sweeper = new Sweeper(engine, config.sweepIntervalMs, (error) => app.log.error({ err: error }, 'sweep failed'));
  let unfollow = () => {};
  let url: string;
  let seededSkus: number;
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
    await cutover?.start();
    seededSkus = config.demo ? await seedDemoCatalog(engine) : 0;
    metrics.followStock(engine);
    app.log.info({ skus, seededSkus, revision: await store.revision(), ...heapAfterGc() }, 'engine warm');
    sweeper.start();
    shedder.start();
    url = await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    // A failed start releases what it took (feeds, timers, the store's client), so the process can exit.
    await sweeper.stop();
    shedder.stop();
    watch.close();
    unfollow();
    await cutover?.stop();
    await (cutover ? cutover.close() : store.close());
    throw error;
  }
  ready = true;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      ready = false;
      closingStarted = true;
      const grace = AbortSignal.timeout(config.shutdownGraceMs);
      const graceElapsed = new Promise<void>((resolve) => grace.addEventListener('abort', () => resolve()));
      // Stop accepting and answer what is in flight, then let the writers finish their batches;
      // the grace period bounds each step, and the store closes either way.
      await Promise.race([app.close(), graceElapsed]);
      // A move under way stops first: the SKUs it fenced go on where they are, so the writers can drain.
      await Promise.race([cutover?.stop(), graceElapsed]);
      await Promise.race([engine.drain(), graceElapsed]);
      await sweeper.stop();
      shedder.stop();
      watch.close();
      unfollow();
      await (cutover ? cutover.close() : store.close());
    })();
    return closing;
  };
  const reload = () => secrets.reload(config.tls ? (app.server as import('node:https').Server) : undefined);
  return { app, engine, store, cutover, sweeper, shedder, metrics, watch, url, seededSkus, reload, close };
}
