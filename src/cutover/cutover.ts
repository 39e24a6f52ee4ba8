// The cutover's composition: two stores, each behind its outbox; the routing
// (in etcd) that says which one each SKU is authoritative on; a mirror
// worker each way, behind its own circuit breaker; moves; shadow reads. The
// service opens both stores and hands them here; the engine then commits
// each SKU through its store's outbox.
import type { Logger } from 'pino';
import type { ServeConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { timeOrderedIds } from '../engine/time-ordered-ids.ts';
import { ensureLayout, type StoreKind } from '../layout.ts';
import type { Metrics } from '../metrics.ts';
import { BackendBreaker } from '../store/backend-breaker.ts';
import type { Store } from '../store/contract.ts';
import { createEtcdClient, EtcdStore, isNoSpaceError } from '../store/etcd-store.ts';
import { MirrorWorker } from './mirror-worker.ts';
import { Moves } from './moves.ts';
import { OutboxStore } from './outbox-store.ts';
import { Routing } from './routing.ts';
import { ShadowReads } from './shadow.ts';

/** A store as the service opened it: the store, and for etcd how to reach it. */
export interface OpenedForCutover {
  store: Store;
  /** Set for etcd: the connection, so the mirror path gets a client and a breaker of its own. */
  etcd?: { connection: Parameters<typeof createEtcdClient>[0]; prefix: string; maxTxnOps: number } | undefined;
}

interface Paths {
  /** Each store as the mirror path reads and writes it. */
  reader: Map<StoreKind, Store>;
  breakers: Map<StoreKind, BackendBreaker>;
  close: () => Promise<void>;
}

/**
 * The mirror path's own handle on each store: LMDB is the same store; etcd
 * gets its own client and, per direction, a breaker of its own, so a mirror
 * that is down opens its breaker without touching the one requests use.
 */
function mirrorPaths(config: Readonly<ServeConfig>, home: OpenedForCutover, mirror: OpenedForCutover, log: Logger) {
  const paths: Paths = { reader: new Map(), breakers: new Map(), close: async () => {} };
  for (const opened of [home, mirror]) {
    const kind = opened.store.kind;
    const breaker = new BackendBreaker({
      ...config.breaker,
      counts: (error) => !isNoSpaceError(error) && !(error instanceof Error && isNoSpaceError(error.cause)),
    });
    breaker.onStateChange((state) => log.warn({ store: kind, state }, `mirror path circuit breaker ${state}`));
    paths.breakers.set(kind, breaker);
    if (opened.etcd === undefined) {
      paths.reader.set(kind, opened.store);
      continue;
    }
    const etcd = new EtcdStore({
      client: createEtcdClient(opened.etcd.connection),
      ownsClient: true,
      prefix: opened.etcd.prefix,
      maxTxnOps: opened.etcd.maxTxnOps,
    });
    paths.reader.set(kind, etcd);
    paths.close = () => etcd.close();
  }
  return paths;
}

export async function openCutover(
  config: Readonly<ServeConfig>,
  home: OpenedForCutover,
  mirror: OpenedForCutover,
  log: Logger,
  metrics: Metrics,
): Promise<Cutover> {
  // Marked first: an outbox's own keys must not be taken for another layout's data.
  await ensureLayout(home.store, { create: true });
  await ensureLayout(mirror.store, { create: true });
  const outboxes = { home: await OutboxStore.open(home.store), mirror: await OutboxStore.open(mirror.store) };
  const etcd = home.store.kind === 'etcd' ? home.store : mirror.store;
  const routing = await Routing.load({ ...outboxes, etcd });
  const paths = mirrorPaths(config, home, mirror, log);
  const workers = [outboxes.home, outboxes.mirror].map((outbox) => {
    const to = routing.other(outbox.kind);
    return new MirrorWorker({
      outbox,
      source: paths.reader.get(outbox.kind)!,
      target: paths.reader.get(to)!,
      // A direction's breaker is its target's: that is the store whose outage it guards against.
      breaker: paths.breakers.get(to)!,
      seed: routing.copies(outbox) ? { done: () => routing.markSeeded() } : undefined,
      log,
    });
  });
  for (const [kind, breaker] of paths.breakers) metrics.watchMirrorBreaker(routing.other(kind), kind, breaker);
  return new Cutover({
    config,
    outboxes,
    routing,
    workers,
    paths,
    etcd,
    log,
    metrics,
    stores: [home.store, mirror.store],
  });
}

interface Parts {
  config: Readonly<ServeConfig>;
  outboxes: { home: OutboxStore; mirror: OutboxStore };
  routing: Routing;
  workers: MirrorWorker[];
  paths: Paths;
  /** Where the routing and the moves live. */
  etcd: Store;
  log: Logger;
  metrics: Metrics;
  /** Both stores as the service opened them, closed with the cutover. */
  stores: Store[];
}

/** The running cutover. The engine is built on its routing, then attached, which makes moves and shadow reads. */
export class Cutover {
  readonly routing: Routing;
  readonly workers: readonly MirrorWorker[];
  private readonly parts: Parts;
  private attached: { moves: Moves; shadow: ShadowReads } | undefined;

  /** Shadow reads, once attached to the engine. */
  get shadow(): ShadowReads | undefined {
    return this.attached?.shadow;
  }

  /** Moves, once attached to the engine. */
  get moves(): Moves | undefined {
    return this.attached?.moves;
  }

  constructor(parts: Parts) {
    this.parts = parts;
    this.routing = parts.routing;
    this.workers = parts.workers;
  }

  /** The --store store behind its outbox: the engine's home store. */
  get home(): OutboxStore {
    return this.parts.outboxes.home;
  }

  worker(from: StoreKind, to: StoreKind): MirrorWorker {
    return this.workers.find((worker) => worker.from === from && worker.to === to)!;
  }

  attach(engine: Engine): { moves: Moves; shadow: ShadowReads } {
    const { routing, paths, log, metrics, config } = this.parts;
    const worker = (from: StoreKind, to: StoreKind) => this.worker(from, to);
    this.attached = {
      moves: new Moves({ routing, engine, etcd: this.parts.etcd, worker, newId: timeOrderedIds(), log }),
      shadow: new ShadowReads({
        routing,
        engine,
        worker,
        reader: (kind) => paths.reader.get(kind)!,
        ratio: config.shadowReadRatio,
        counted: (result) => metrics.shadowReads.inc({ result }),
        log,
      }),
    };
    return this.attached;
  }

  /** Starts the mirror workers, and the moves a crash cut short (once the engine is warm). */
  async start(): Promise<void> {
    for (const worker of this.workers) worker.start();
    await this.attached?.moves.start();
  }

  /** Stops moves (fenced SKUs go on where they are), then the workers. */
  async stop(): Promise<void> {
    await this.attached?.moves.stop();
    await Promise.all(this.workers.map((worker) => worker.stop()));
  }

  /** Closes both stores and every client. */
  async close(): Promise<void> {
    await Promise.all([this.parts.outboxes.home.close(), this.parts.outboxes.mirror.close()]);
    await this.parts.paths.close();
    await Promise.all(this.parts.stores.map((store) => store.close()));
  }
}
