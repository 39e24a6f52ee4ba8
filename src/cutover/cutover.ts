// The cutover's composition: two stores, each behind its outbox; the routing
// (in etcd) that says which one each SKU is authoritative on; a mirror
// worker each way, behind its own circuit breaker; moves; shadow reads. The
// service opens both stores and hands them here; the engine then commits
// each SKU through its store's outbox.
import type { Logger } from 'pino';
import type { ServeConfig } from '../config.ts';
import { mirrorStopCatchUpMs } from '../constants.ts';
import type { Engine } from '../engine/engine.ts';
import { timeOrderedIds } from '../engine/time-ordered-ids.ts';
import { ensureLayout, keys, type StoreKind } from '../layout.ts';
import type { Metrics } from '../metrics.ts';
import { BackendBreaker } from '../store/backend-breaker.ts';
import { prefixEnd, type Store } from '../store/contract.ts';
import { countsAsEtcdFailure, createEtcdClient, EtcdStore } from '../store/etcd-store.ts';
import { skusByStore } from './admin.ts';
import { MirrorWorker } from './mirror-worker.ts';
import { Moves } from './moves.ts';
import { OutboxStore } from './outbox-store.ts';
import { Routing, RoutingError } from './routing.ts';
import { ShadowReads } from './shadow.ts';
import { markStandalone, ranAlone } from './standalone.ts';

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
      counts: countsAsEtcdFailure,
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
  const etcd = home.store.kind === 'etcd' ? home.store : mirror.store;
  await refuseLiveCluster(etcd);
  // Marked first: an outbox's own keys must not be taken for another layout's data.
  await ensureLayout(home.store, { create: true });
  await ensureLayout(mirror.store, { create: true });
  const outboxes = { home: await OutboxStore.open(home.store), mirror: await OutboxStore.open(mirror.store) };
  const routing = await Routing.load({ ...outboxes, etcd }, await startOver(home.store, mirror.store));
  // Until a clean stop says otherwise, neither store may run alone.
  await markStandalone(home.store, false, outboxes.home.stream);
  await markStandalone(mirror.store, false, outboxes.mirror.stream);
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

/**
 * A service with a mirror is one instance, which writes every SKU itself.
 * Instances in distributed mode on the same etcd namespace would write its
 * SKUs past its outbox and its moves' fences, so they must be stopped first.
 * (Once this service has marked the stores, such an instance is refused at
 * its own start: see standalone.ts.)
 */
async function refuseLiveCluster(etcd: Store): Promise<void> {
  const prefix = keys.clusterMembersPrefix;
  const members = await etcd.range({ start: prefix, end: prefixEnd(prefix), limit: 1 });
  if (members.length === 0) return;
  throw new RoutingError(
    `instances in distributed mode (--cluster-key) are running on this etcd namespace (${members[0]!.key}): a service with --mirror is one instance, which writes every SKU itself; stop them first, or use another --etcd-prefix`,
  );
}

/**
 * Whether the routing starts over: --store ran alone since the mirrored
 * service last stopped (so it holds everything, and the routing and the
 * mirror's copy are stale). The mirror having run alone is refused: it is
 * the one that holds the data.
 */
async function startOver(home: Store, mirror: Store): Promise<boolean> {
  const [homeAlone, mirrorAlone] = await Promise.all([ranAlone(home), ranAlone(mirror)]);
  if (mirrorAlone) {
    throw new RoutingError(
      homeAlone
        ? `both stores have run alone since they were mirrored, so they differ: keep one and attach an empty store as its --mirror`
        : `--mirror ${mirror.kind} has run alone since the stores were mirrored: it holds the data, so start with --store ${mirror.kind} --mirror ${home.kind}`,
    );
  }
  return homeAlone;
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
  private attached: { engine: Engine; moves: Moves; shadow: ShadowReads } | undefined;

  constructor(parts: Parts) {
    this.parts = parts;
    this.routing = parts.routing;
    this.workers = parts.workers;
  }

  /** Shadow reads, once attached to the engine. */
  get shadow(): ShadowReads | undefined {
    return this.attached?.shadow;
  }

  /** Moves, once attached to the engine. */
  get moves(): Moves | undefined {
    return this.attached?.moves;
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
      engine,
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

  /** Stops moves (fenced SKUs go on where they are), so the writers can drain. */
  async stop(): Promise<void> {
    await this.attached?.moves.stop();
  }

  /**
   * Once nothing commits any more: lets the mirror catch up (bounded), stops
   * the workers, says on each store whether it may now run alone, and closes
   * both stores and every client.
   */
  async close(): Promise<void> {
    const deadline = Date.now() + mirrorStopCatchUpMs;
    for (const worker of this.workers.filter((each) => each.ready)) {
      const outbox = this.routing.store(worker.from);
      await worker.whenCovered(outbox.settledThrough, Math.max(0, deadline - Date.now()));
    }
    await Promise.all(this.workers.map((worker) => worker.stop()));
    await this.leaveStandaloneMarks().catch((error: unknown) =>
      this.parts.log.warn({ err: error }, 'could not record whether each store may run alone'),
    );
    await Promise.all([this.parts.outboxes.home.close(), this.parts.outboxes.mirror.close()]);
    await this.parts.paths.close();
    await Promise.all(this.parts.stores.map((store) => store.close()));
  }

  /** A store may run alone when every SKU is on it, no move is under way, and it holds all the other recorded. */
  private async leaveStandaloneMarks(): Promise<void> {
    const attached = this.attached;
    if (attached === undefined) return;
    const counts = skusByStore(attached.engine, this.routing);
    const moving = attached.moves.unfinished();
    for (const outbox of [this.parts.outboxes.home, this.parts.outboxes.mirror]) {
      const other = this.routing.other(outbox.kind);
      const feeding = this.worker(other, outbox.kind);
      const allowed = !moving && (counts[other] ?? 0) === 0 && feeding.ready && feeding.lagEntries() === 0;
      await markStandalone(outbox.inner, allowed, outbox.stream);
    }
  }
}
