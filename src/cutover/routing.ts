// Per-SKU routing: which store is authoritative for each SKU, kept durably in
// etcd (the store that decides ownership) under `routing/`, and in memory for
// the hot path. A SKU without a route of its own is on the default store: the
// one named by --store when the mirror was first attached. A move (moves.ts)
// switches a group of SKUs in one etcd transaction, under the exclusive side
// of a lock whose shared side covers work that reads a SKU's routing and
// then commits outside its writer (the idempotency sweep).
//
// One instance serves a cutover: the mirror is a local LMDB store, and this
// table is read at start and changed only by this process's moves.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { moveRetryPauseMs, scanPageEntries } from '../constants.ts';
import type { OrderRecord } from '../domain/types.ts';
import type { StoreRouting } from '../engine/store-routing.ts';
import { keys, otherStoreKind, type RoutingConfig, type SkuRoute, type StoreKind } from '../layout.ts';
import { type Entry, type Store, scanPrefix, type Write } from '../store/contract.ts';
import { holdsMirroredData } from './diff-scan.ts';
import type { OutboxStore } from './outbox-store.ts';
import { assertRoutingConfig, assertSkuRoute, CutoverRecordError } from './records.ts';

/** The routing cannot be used as stored: a start-up refusal with the reason. */
export class RoutingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RoutingError';
  }
}

export interface RoutingStores {
  /** The store named by --store, and the one named by --mirror, each behind its outbox. */
  home: OutboxStore;
  mirror: OutboxStore;
  /** The etcd store the routing records live in (not behind an outbox: routing is never mirrored). */
  etcd: Store;
}

export class Routing implements StoreRouting {
  readonly home: OutboxStore;
  private readonly byKind: ReadonlyMap<StoreKind, OutboxStore>;
  private readonly etcd: Store;
  private config: RoutingConfig;
  private configVersion: number;
  private readonly routes = new Map<string, SkuRoute>();
  /** SKUs with a route of their own, by store. */
  private readonly routed = new Map<StoreKind, number>();
  /** Bumped by every switch, so a reader can tell that a SKU may have moved under it. */
  private switches = 0;
  private readers = 0;
  private readonly readersIdle: (() => void)[] = [];
  private switching: Promise<void> | undefined;
  private stopping = false;

  private constructor(stores: RoutingStores, config: Entry<RoutingConfig>) {
    this.home = stores.home;
    this.byKind = new Map([
      [stores.home.kind, stores.home],
      [stores.mirror.kind, stores.mirror],
    ]);
    this.etcd = stores.etcd;
    this.config = config.value;
    this.configVersion = config.version;
  }

  /**
   * Reads the routing, creating it on first use: every SKU on --store, and
   * that store to be copied into the mirror, which must hold no data yet.
   */
  static async load(stores: RoutingStores, startOver = false): Promise<Routing> {
    if (startOver) await Routing.clear(stores.etcd);
    let config = await stores.etcd.get<RoutingConfig>(keys.routingConfig);
    if (config === undefined) config = await Routing.create(stores, startOver);
    assertRoutingConfig(config.value);
    Routing.assertPair(config.value, stores);
    const routing = new Routing(stores, config);
    await routing.loadRoutes();
    return routing;
  }

  /** The routing pairs exactly these two stores: not another data directory, nor a second instance's. */
  private static assertPair(config: RoutingConfig, stores: RoutingStores): void {
    for (const outbox of [stores.home, stores.mirror]) {
      if (config.pair[outbox.kind] === outbox.stream) continue;
      throw new RoutingError(
        `the routing in etcd pairs another ${outbox.kind} store with this one (outbox ${config.pair[outbox.kind]}, this one ${outbox.stream}): one instance serves a cutover, with the stores it started with; attach an empty store under a new --etcd-prefix to start another`,
      );
    }
  }

  /**
   * Forgets every route, move and the configuration: --store ran alone since,
   * so every SKU is on it and the mirror's copy is stale (it is copied again).
   */
  private static async clear(etcd: Store): Promise<void> {
    for (const prefix of [keys.routingSkuPrefix, keys.routingMovePrefix]) {
      for await (const page of scanPrefix(etcd, prefix, etcd.limits.commitWritesMax)) {
        await etcd.commit(
          [],
          page.map((entry): Write => ({ type: 'delete', key: entry.key })),
        );
      }
    }
    await etcd.commit([], [{ type: 'delete', key: keys.routingConfig }]);
  }

  private static async create(stores: RoutingStores, overStale: boolean): Promise<Entry<RoutingConfig>> {
    // A stale copy (the mirror of a store that has run alone since) is copied over; anything else is refused.
    const occupied = overStale ? undefined : await holdsMirroredData(stores.mirror);
    if (occupied !== undefined) {
      throw new RoutingError(
        `--mirror ${stores.mirror.kind} already holds data (its first key is ${JSON.stringify(occupied)}) but is not a mirror of --store ${stores.home.kind}: attach an empty store as the mirror, or swap --store and --mirror if that one holds the data`,
      );
    }
    const value: RoutingConfig = {
      defaultStore: stores.home.kind,
      seed: { state: 'copying', stream: stores.home.stream },
      pair: {
        [stores.home.kind]: stores.home.stream,
        [stores.mirror.kind]: stores.mirror.stream,
      } as RoutingConfig['pair'],
    };
    const made = await stores.etcd.commit(
      [{ key: keys.routingConfig, version: 0 }],
      [{ type: 'put', key: keys.routingConfig, value }],
    );
    const config = await stores.etcd.get<RoutingConfig>(keys.routingConfig);
    if (config === undefined) throw new RoutingError(`the routing configuration could not be created (${made.ok})`);
    return config;
  }

  private async loadRoutes(): Promise<void> {
    for await (const page of scanPrefix<SkuRoute>(this.etcd, keys.routingSkuPrefix, scanPageEntries)) {
      for (const entry of page) {
        assertSkuRoute(entry.value, entry.key);
        if (!this.byKind.has(entry.value.store)) {
          throw new RoutingError(
            `${entry.key} routes SKU to ${entry.value.store}, which this instance is not configured with: start it with both stores (--store and --mirror)`,
          );
        }
        this.setRoute(entry.key.slice(keys.routingSkuPrefix.length), entry.value);
      }
    }
    if (!this.byKind.has(this.config.defaultStore)) {
      throw new RoutingError(`SKUs without a route are on ${this.config.defaultStore}, which is not configured`);
    }
  }

  get defaultStore(): StoreKind {
    return this.config.defaultStore;
  }

  /** True once the initial copy of the default store into the mirror is in. */
  get seeded(): boolean {
    return this.config.seed.state === 'done';
  }

  /** Counts switches; a reader compares it before and after to know no SKU moved meanwhile. */
  get epoch(): number {
    return this.switches;
  }

  /** Whether the worker from `source` must copy it whole first (its outbox is the one being copied). */
  copies(source: OutboxStore): boolean {
    return this.config.seed.state === 'copying' && this.config.seed.stream === source.stream;
  }

  /** Records the initial copy as done (once). */
  async markSeeded(): Promise<void> {
    if (this.seeded) return;
    const value: RoutingConfig = { ...this.config, seed: { state: 'done' } };
    const result = await this.etcd.commit(
      [{ key: keys.routingConfig, version: this.configVersion }],
      [{ type: 'put', key: keys.routingConfig, value }],
    );
    if (!result.ok) throw new CutoverRecordError('the routing configuration (changed by someone else)', value);
    this.config = value;
    this.configVersion = result.revision;
  }

  kindOf(skuId: string): StoreKind {
    return this.routes.get(skuId)?.store ?? this.config.defaultStore;
  }

  /** The move that put a SKU where it is, if a move did. */
  moveOf(skuId: string): string | undefined {
    return this.routes.get(skuId)?.moveId;
  }

  store(kind: StoreKind): OutboxStore {
    return this.byKind.get(kind)!;
  }

  other(kind: StoreKind): StoreKind {
    return otherStoreKind(kind);
  }

  storeFor(skuId: string): Store {
    return this.store(this.kindOf(skuId));
  }

  stores(): readonly Store[] {
    return [...this.byKind.values()];
  }

  holdsAny(store: Store): boolean {
    return this.holdsAnyOn(store.kind);
  }

  private holdsAnyOn(kind: StoreKind): boolean {
    return kind === this.config.defaultStore || (this.routed.get(kind) ?? 0) > 0;
  }

  private setRoute(sku: string, route: SkuRoute): void {
    const before = this.routes.get(sku)?.store;
    if (before !== undefined) this.routed.set(before, this.routed.get(before)! - 1);
    this.routed.set(route.store, (this.routed.get(route.store) ?? 0) + 1);
    this.routes.set(sku, route);
  }

  /**
   * An order from its SKU's store. The order names its SKU, so it is looked
   * up on the home store first (which holds every order, some as copies) and
   * read again from its SKU's store when that is the other one; an order the
   * home store lacks is looked for only on a store that some SKU is on.
   */
  async getOrder(orderId: string): Promise<Entry<OrderRecord> | undefined> {
    const key = keys.order(orderId);
    const atHome = await this.home.get<OrderRecord>(key);
    if (atHome !== undefined) {
      const store = this.storeFor(atHome.value.sku);
      return store === this.home ? atHome : store.get<OrderRecord>(key);
    }
    const other = otherStoreKind(this.home.kind);
    if (!this.holdsAnyOn(other)) return undefined;
    const found = await this.store(other).get<OrderRecord>(key);
    return found !== undefined && this.kindOf(found.value.sku) === other ? found : undefined;
  }

  async stable<T>(work: () => Promise<T>): Promise<T> {
    while (this.switching !== undefined) await this.switching;
    this.readers++;
    try {
      return await work();
    } finally {
      this.readers--;
      if (this.readers === 0) for (const resolve of this.readersIdle.splice(0)) resolve();
    }
  }

  /** Runs `work` with no `stable` work under way and none starting until it ends. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    while (this.switching !== undefined) await this.switching;
    let release = () => {};
    this.switching = new Promise((resolve) => {
      release = resolve;
    });
    try {
      while (this.readers > 0) await new Promise<void>((resolve) => this.readersIdle.push(resolve));
      return await work();
    } finally {
      this.switching = undefined;
      release();
    }
  }

  /**
   * Switches `skus` to `to` durably: their routes and `also` (the move's
   * record) in one etcd transaction. A transaction whose outcome is unclear
   * (etcd did not answer) is read back until it is known, so memory never
   * disagrees with what a restart would read. True when it switched.
   */
  async switchTo(skus: readonly string[], to: StoreKind, moveId: string, also: Write): Promise<boolean> {
    const route: SkuRoute = { store: to, moveId };
    const writes: Write[] = skus.map((sku) => ({ type: 'put', key: keys.routingSku(sku), value: route }));
    let switched: boolean;
    try {
      await this.etcd.commit([], [...writes, also]);
      switched = true;
    } catch {
      switched = await this.readBack(skus, route);
    }
    if (switched) {
      for (const sku of skus) this.setRoute(sku, route);
      this.switches++;
    }
    return switched;
  }

  /** Whether a switch whose answer was lost applied: all of its routes or none (one transaction). */
  private async readBack(skus: readonly string[], route: SkuRoute): Promise<boolean> {
    for (;;) {
      if (this.stopping) throw new RoutingError('stopped before a switch could be read back');
      try {
        const found = await this.etcd.getMany<SkuRoute>(skus.map((sku) => keys.routingSku(sku)));
        const first = found[0]?.value;
        return first?.store === route.store && first.moveId === route.moveId;
      } catch {
        await sleep(moveRetryPauseMs);
      }
    }
  }

  stop(): void {
    this.stopping = true;
  }

  /** SKUs in the first `percent` of a stable order by hash: each larger share holds every smaller one. */
  static cohort(skuIds: readonly string[], percent: number): string[] {
    const ranked = skuIds.map((sku) => ({ sku, rank: createHash('sha256').update(sku).digest('hex') }));
    ranked.sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0));
    return ranked.slice(0, Math.ceil((ranked.length * percent) / 100)).map((item) => item.sku);
  }
}
