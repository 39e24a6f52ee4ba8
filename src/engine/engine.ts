// The engine owns the SKU writers: it warms every SKU from the store at start,
// routes each mutation to its SKU's writer, applies admission control (bounded
// queues, fast 503 instead of queueing into timeouts), answers sold-out
// reservations and SKU reads from memory, and serves the read queries. It
// returns records and outcomes as values; rendering them is the HTTP layer's.
import { engineQueueDepthMax, scanPageEntries, skusMax } from '../constants.ts';
import { available } from '../domain/ledger.ts';
import type { OrderAction } from '../domain/order-state.ts';
import type { CatalogEntry, OrderRecord, SkuRecord } from '../domain/types.ts';
import { idempotencyId, keys } from '../layout.ts';
import type { ChangeFeedGap, Entry, Store } from '../store/contract.ts';
import { scanPrefix } from '../store/contract.ts';
import type { DecideContext } from './decide.ts';
import type { MutationGuards, Mutations } from './mutations.ts';
import type { IdempotencyIntent, Operation, OperationResult, Rejected, ResolvedIntent } from './operations.ts';
import { rejected, storeRejection } from './operations.ts';
import { listOrders, listSkus, type OrderQuery, type Page, type SkuQuery, type Versioned } from './queries.ts';
import { SkuWriter, type WarmSku, type WriterHooks } from './sku-writer.ts';
import { type StoreRouting, singleStore } from './store-routing.ts';
import { timeOrderedIds } from './time-ordered-ids.ts';

export interface EngineOptions {
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  /** New requests for a SKU are shed once its oldest waiting one has waited this long; 0 = never. */
  shedQueueWaitMs?: number;
  /** The clock; tests may substitute their own. */
  nowMs?: () => number;
  /** Where each SKU is authoritative when the service runs with a mirror; every SKU on `store` otherwise. */
  routing?: StoreRouting;
}

export interface EngineObserver {
  batchCommitted(skuId: string, batchSize: number, commitMs: number): void;
  operationDecided(op: Operation, result: OperationResult): void;
  storeFailed(error: unknown): void;
  /** The change feed lost commits; the engine re-warms every SKU from the store. */
  feedGapped?(gap: ChangeFeedGap, rewarmError?: unknown): void;
}

function resolve(intent: IdempotencyIntent | undefined): ResolvedIntent | undefined {
  return intent && { id: idempotencyId(intent.scope, intent.key), fingerprint: intent.fingerprint ?? '' };
}

export type { MutationGuards } from './mutations.ts';

type ReserveOp = Extract<Operation, { kind: 'reserve' }>;

export class Engine implements Mutations {
  private readonly store: Store;
  readonly routing: StoreRouting;
  private readonly options: EngineOptions;
  private readonly observer: EngineObserver;
  private readonly writers = new Map<string, SkuWriter>();
  private readonly newId = timeOrderedIds();
  private readonly hooks: WriterHooks;
  private queuedOps = 0;
  private accepting = true;
  /** The latest revision the SKU feed (followStore) delivered: the warm state holds every SKU commit before it. */
  private followedRevision = 0;
  private readonly followWaiters = new Set<{ revision: number; reached: () => void }>();

  constructor(store: Store, options: EngineOptions, observer: EngineObserver) {
    this.store = store;
    this.routing = options.routing ?? singleStore(store);
    this.options = options;
    this.observer = observer;
    this.hooks = {
      context: () => this.context(),
      queueWaitBoundMs: options.shedQueueWaitMs ?? 0,
      committed: (skuId, batchSize, commitMs) => observer.batchCommitted(skuId, batchSize, commitMs),
      decided: (op, result) => observer.operationDecided(op, result),
      dequeued: (count) => {
        this.queuedOps -= count;
      },
      storeFailed: (error) => observer.storeFailed(error),
    };
  }

  nowMs(): number {
    return this.options.nowMs?.() ?? Date.now();
  }

  get reservationTtlMs(): number {
    return this.options.reservationTtlMs;
  }

  private context(): DecideContext {
    return {
      nowMs: this.nowMs(),
      reservationTtlMs: this.options.reservationTtlMs,
      idempotencyTtlMs: this.options.idempotencyTtlMs,
      newId: this.newId,
    };
  }

  /**
   * Loads every SKU into memory, each from the store authoritative for it;
   * the hot path never reads a SKU from the store.
   */
  async warm(): Promise<number> {
    for (const store of this.routing.stores()) {
      for await (const page of scanPrefix<SkuRecord>(store, keys.skuPrefix, scanPageEntries)) {
        // The change feed may already have brought a newer state of a SKU; the newer one stays.
        for (const entry of page) this.observeSku(store, entry.value, entry.version);
      }
    }
    return this.writers.size;
  }

  private addWriter(skuId: string, warm: WarmSku | undefined): SkuWriter {
    const writer = new SkuWriter(skuId, warm, this.routing.storeFor(skuId), this.hooks);
    this.writers.set(skuId, writer);
    return writer;
  }

  get queueDepth(): number {
    return this.queuedOps;
  }

  /** A SKU as last committed, from memory. */
  getSku(skuId: string): Versioned<SkuRecord> | undefined {
    const state = this.writers.get(skuId)?.state;
    return state && { record: state.record, version: state.version };
  }

  /** Every warm SKU; for the demo seeder, the sweeper and the metrics. */
  skuIds(): string[] {
    return [...this.writers.values()].filter((writer) => writer.state !== undefined).map((writer) => writer.skuId);
  }

  async getOrder(orderId: string): Promise<Versioned<OrderRecord> | undefined | Rejected> {
    try {
      const entry = await this.routing.getOrder(orderId);
      return entry && { record: entry.value, version: entry.version };
    } catch (error) {
      return storeRejection(error, 'the store could not be read');
    }
  }

  async listSkus(query: SkuQuery): Promise<Page<Versioned<SkuRecord>> | Rejected> {
    try {
      return await listSkus(this.store, (id) => this.getSku(id), query);
    } catch (error) {
      return storeRejection(error, 'the store could not be read');
    }
  }

  async listOrders(query: OrderQuery): Promise<Page<Versioned<OrderRecord>> | Rejected> {
    try {
      // One SKU's orders come from its store; a listing across SKUs from the home store (see store-routing.ts).
      const store = query.sku === undefined ? this.store : this.routing.storeFor(query.sku);
      return await listOrders(store, query);
    } catch (error) {
      return storeRejection(error, 'the store could not be read');
    }
  }

  /**
   * Reserves stock. With an idempotency key the order's id is derived from it,
   * so a retry lands on the same order; without one (internal callers) the id
   * is fresh. Sold out is answered from memory, unless the key may already
   * hold an answer, which a retry must hear again.
   */
  async reserve(
    skuId: string,
    request: { qty: number; userId: string },
    intent?: IdempotencyIntent,
  ): Promise<OperationResult> {
    const op = this.reserveOp(request, intent);
    if (intent === undefined || !this.isSoldOut(skuId)) return this.submit(skuId, op);
    return (await this.soldOutUnlessAnswered(skuId, op)) ?? this.admit(skuId, op);
  }

  /**
   * The answer to a reservation when it can come from memory: the SKU is
   * sold out and the key holds no earlier answer. Undefined otherwise (the
   * SKU's writer must decide). Any instance may answer this way, owner or not.
   */
  async soldOutAnswer(
    skuId: string,
    request: { qty: number; userId: string },
    intent?: IdempotencyIntent,
  ): Promise<Rejected | undefined> {
    if (!this.isSoldOut(skuId)) return undefined;
    const op = this.reserveOp(request, intent);
    return intent === undefined ? this.soldOut(skuId, op) : this.soldOutUnlessAnswered(skuId, op);
  }

  private reserveOp(request: { qty: number; userId: string }, intent: IdempotencyIntent | undefined): ReserveOp {
    const orderId = intent === undefined ? this.newId() : idempotencyId(intent.scope, intent.key);
    return { kind: 'reserve', qty: request.qty, userId: request.userId, orderId };
  }

  /** Sold out, unless the key may already hold an answer, which a retry must hear again. */
  private async soldOutUnlessAnswered(skuId: string, op: ReserveOp): Promise<Rejected | undefined> {
    try {
      const found = await this.routing.storeFor(skuId).getMany([keys.order(op.orderId), keys.idempotency(op.orderId)]);
      if (found.every((entry) => entry === undefined)) return this.soldOut(skuId, op);
    } catch {
      // Unknown whether the key holds an answer: the writer reads again and answers either way.
    }
    return undefined;
  }

  /**
   * Moves an order to its next state; the order is read once, to find its
   * SKU's writer (`known`: already read by the caller, e.g. to route it).
   */
  async transition(
    orderId: string,
    action: Exclude<OrderAction, 'expire'>,
    guards: MutationGuards,
    known?: Versioned<OrderRecord>,
  ): Promise<OperationResult> {
    let hint: Entry<OrderRecord> | undefined;
    try {
      hint = known
        ? { key: keys.order(orderId), value: known.record, version: known.version }
        : await this.routing.getOrder(orderId);
    } catch (error) {
      return storeRejection(error, 'the store could not be read');
    }
    if (hint === undefined) return rejected('order_not_found', `no order ${orderId}`);
    const op: Operation = {
      kind: 'transition',
      orderId,
      action,
      ifMatch: guards.ifMatch,
      idempotency: resolve(guards.idempotency),
      hint,
    };
    return this.submit(hint.value.sku, op);
  }

  adjust(skuId: string, change: { delta: number; reason: string }, guards: MutationGuards): Promise<OperationResult> {
    const op: Operation = {
      kind: 'adjust',
      ...change,
      ifMatch: guards.ifMatch,
      idempotency: resolve(guards.idempotency),
    };
    return this.submit(skuId, op);
  }

  upsert(
    skuId: string,
    request: { entry: CatalogEntry; initialStock?: number | undefined },
    guards: MutationGuards,
  ): Promise<OperationResult> {
    const op: Operation = {
      kind: 'upsert',
      ...request,
      ifMatch: guards.ifMatch,
      idempotency: resolve(guards.idempotency),
    };
    return this.submit(skuId, op);
  }

  private isSoldOut(skuId: string): boolean {
    const state = this.writers.get(skuId)?.state;
    return state !== undefined && available(state.record) === 0;
  }

  private soldOut(skuId: string, op: Operation): Rejected {
    const result = rejected('sold_out', `SKU ${skuId} is sold out`);
    this.observer.operationDecided(op, result);
    return result;
  }

  /** Routes an operation to its SKU's writer; a fresh reservation on a sold-out SKU is answered from memory. */
  async submit(skuId: string, op: Operation): Promise<OperationResult> {
    // A flash sale's tail never reaches the store.
    if (op.kind === 'reserve' && this.isSoldOut(skuId)) return this.soldOut(skuId, op);
    return this.admit(skuId, op);
  }

  private admit(skuId: string, op: Operation): Promise<OperationResult> | OperationResult {
    if (!this.accepting) return rejected('not_ready', 'the service is shutting down');
    let writer = this.writers.get(skuId);
    if (writer === undefined) {
      if (op.kind !== 'upsert') return rejected('sku_not_found', `no SKU ${skuId}`);
      if (this.writers.size >= skusMax)
        return rejected('overloaded', `the catalog holds its maximum of ${skusMax} SKUs`);
      writer = this.addWriter(skuId, undefined);
    }
    if (!writer.hasRoom() || this.queuedOps >= engineQueueDepthMax || this.waitedTooLong(writer)) {
      const result = rejected('overloaded', `SKU ${skuId} has more requests waiting than it can commit promptly`);
      this.observer.operationDecided(op, result);
      return result;
    }
    this.queuedOps++;
    return writer.submit(op);
  }

  private waitedTooLong(writer: SkuWriter): boolean {
    const bound = this.hooks.queueWaitBoundMs;
    return bound > 0 && writer.oldestWaitMs() > bound;
  }

  /**
   * Follows the home store's change feed so SKU records written elsewhere
   * (another instance, where the store can see them) refresh the warm state.
   * A writer never goes back to an older version, so this process's own
   * commits, which arrive here too, change nothing; nor do a mirror's copies,
   * since a SKU is taken only from the store authoritative for it. A service
   * with a mirror runs as one instance: the other store changes only through
   * this process, and its feed would only echo the mirror's copies.
   */
  followStore(): () => void {
    const store = this.routing.home;
    return store.subscribe(
      keys.skuPrefix,
      (change) => {
        for (const write of change.writes) {
          if (write.type !== 'put') continue;
          this.observeSku(store, write.value as SkuRecord, change.revision);
        }
        this.followed(change.revision);
      },
      (gap) => void this.rewarm(gap),
    );
  }

  private followed(revision: number): void {
    if (revision <= this.followedRevision) return;
    this.followedRevision = revision;
    for (const waiter of this.followWaiters) {
      if (waiter.revision > revision) continue;
      this.followWaiters.delete(waiter);
      waiter.reached();
    }
  }

  /**
   * Resolves once the warm state holds every SKU commit made before
   * `revision`: when the SKU feed delivers a commit at or after it (it
   * delivers in order, so everything before came first), or when a read of
   * every SKU started now completes, whichever is first. The feed is quick
   * while any SKU is being written; the read covers a quiet store.
   */
  async catchUp(revision: number): Promise<void> {
    if (this.followedRevision >= revision) return;
    const waiter = { revision, reached: () => {} };
    const reached = new Promise<void>((resolve) => {
      waiter.reached = resolve;
    });
    this.followWaiters.add(waiter);
    try {
      await Promise.race([reached, this.warm()]);
    } finally {
      this.followWaiters.delete(waiter);
    }
  }

  /** Adopts a SKU record read from `store`, if that store is authoritative for the SKU. */
  private observeSku(store: Store, record: SkuRecord, version: number): void {
    if (this.routing.storeFor(record.sku) !== store) return;
    const writer = this.writers.get(record.sku);
    if (writer === undefined) this.addWriter(record.sku, { record, version });
    else writer.observe(record, version);
  }

  /**
   * The feed skipped commits (etcd compacted them before this instance saw
   * them): read every SKU again, so no warm state stays older than the store.
   * A writer keeps whichever of its state and the store's is newer.
   */
  private async rewarm(gap: ChangeFeedGap): Promise<void> {
    try {
      await this.warm();
      // The read came after the gap, so it holds every commit the feed skipped.
      this.followed(gap.resumedAfterRevision);
      this.observer.feedGapped?.(gap);
    } catch (error) {
      // Warm state older than the store only costs a conflict and a reload on the next commit.
      this.observer.feedGapped?.(gap, error);
    }
  }

  /**
   * Holds a SKU for a move to another store: its writer stops deciding and
   * lets its commits in flight land; requests keep queuing, within the usual
   * bounds. Resolves once nothing of the SKU is in flight.
   */
  async fenceSku(skuId: string): Promise<void> {
    await this.writers.get(skuId)?.fence();
  }

  /** Lifts the fence of a SKU that stays where it is. */
  unfenceSku(skuId: string): void {
    this.writers.get(skuId)?.unfence();
  }

  /** Lifts the fence of a SKU that moved: its writer commits to `store` from now on, starting from `warm`. */
  rehomeSku(skuId: string, store: Store, warm: WarmSku | undefined): void {
    this.writers.get(skuId)?.rehome(store, warm);
  }

  /** Resolves once the writer of every SKU `matches` picks has answered all it holds (a shard hand-over). */
  async drainWhere(matches: (skuId: string) => boolean): Promise<void> {
    const draining: Promise<void>[] = [];
    for (const [skuId, writer] of this.writers) if (matches(skuId)) draining.push(writer.drained());
    await Promise.all(draining);
  }

  /** Stops taking new work and waits for every queued operation to be answered. */
  async drain(): Promise<void> {
    this.accepting = false;
    await this.drainWhere(() => true);
  }
}
