// The engine owns the SKU writers: it warms every SKU from the store at start,
// routes each mutation to its SKU's writer, applies admission control (bounded
// queues, fast 503 instead of queueing into timeouts), answers sold-out and
// idempotent replays from memory and snapshot reads without touching the
// writer, and tells listeners about every committed stock change.
import { engineQueueDepthMax, scanPageEntries, skusMax } from '../constants.ts';
import { available } from '../domain/ledger.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import type { ChangeFeedGap, Store } from '../store/contract.ts';
import { scanPrefix } from '../store/contract.ts';
import { keys } from '../store/keys.ts';
import { checkIdempotency, type DecideContext, type IdempotencyRecord } from './decide.ts';
import type { IdempotencyIntent, Operation, OperationResult } from './operations.ts';
import { rejected } from './operations.ts';
import { orderIdGenerator } from './order-ids.ts';
import { SkuWriter, type WarmSku, type WriterHooks } from './sku-writer.ts';
import { type SkuView, skuView } from './views.ts';
import { WorkingSet } from './working-set.ts';

export interface EngineOptions {
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  /** New requests for a SKU are shed once its oldest waiting one has waited this long; 0 = never. */
  shedQueueWaitMs?: number;
  /** The clock; tests may substitute their own. */
  nowMs?: () => number;
}

export interface StockEvent {
  revision: number;
  sku: SkuView;
}

export interface EngineObserver {
  batchCommitted(batchSize: number, commitMs: number): void;
  operationDecided(op: Operation, result: OperationResult): void;
  storeFailed(error: unknown): void;
  /** The change feed lost commits; the engine re-warms every SKU from the store. */
  feedGapped?(gap: ChangeFeedGap, rewarmError?: unknown): void;
}

export class Engine {
  private readonly store: Store;
  private readonly options: EngineOptions;
  private readonly observer: EngineObserver;
  private readonly writers = new Map<string, SkuWriter>();
  private readonly inFlightIdempotency = new Map<string, Promise<OperationResult>>();
  private readonly stockListeners = new Set<(event: StockEvent) => void>();
  private readonly newOrderId = orderIdGenerator();
  private readonly hooks: WriterHooks;
  private queuedOps = 0;
  private accepting = true;

  constructor(store: Store, options: EngineOptions, observer: EngineObserver) {
    this.store = store;
    this.options = options;
    this.observer = observer;
    this.hooks = {
      context: () => this.context(),
      committed: (sku, revision, batchSize, commitMs) => {
        observer.batchCommitted(batchSize, commitMs);
        this.emit({ revision, sku: skuView(sku.record, sku.version) });
      },
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

  private context(): DecideContext {
    return {
      nowMs: this.nowMs(),
      reservationTtlMs: this.options.reservationTtlMs,
      idempotencyTtlMs: this.options.idempotencyTtlMs,
      newOrderId: this.newOrderId,
    };
  }

  /** Loads every SKU into memory; the hot path never reads a SKU from the store. */
  async warm(): Promise<number> {
    for await (const page of scanPrefix<SkuRecord>(this.store, keys.skuPrefix, scanPageEntries)) {
      for (const entry of page) {
        // The change feed may already have brought a newer state of this SKU; the newer one stays.
        const writer = this.writers.get(entry.value.sku);
        if (writer) writer.observe(entry.value, entry.version);
        else this.addWriter(entry.value.sku, { record: entry.value, version: entry.version });
      }
    }
    return this.writers.size;
  }

  private addWriter(skuId: string, warm: WarmSku | undefined): SkuWriter {
    const writer = new SkuWriter(skuId, warm, this.store, this.hooks);
    this.writers.set(skuId, writer);
    return writer;
  }

  get queueDepth(): number {
    return this.queuedOps;
  }

  getSku(skuId: string): SkuView | undefined {
    const state = this.writers.get(skuId)?.state;
    return state && skuView(state.record, state.version);
  }

  /** Every warm SKU; for the demo seeder and the checker. */
  skuIds(): string[] {
    return [...this.writers.values()].filter((writer) => writer.state !== undefined).map((writer) => writer.skuId);
  }

  onStock(listener: (event: StockEvent) => void): () => void {
    this.stockListeners.add(listener);
    return () => this.stockListeners.delete(listener);
  }

  private emit(event: StockEvent): void {
    for (const listener of this.stockListeners) listener(event);
  }

  /**
   * Routes an operation to its SKU's writer. Operations carrying an idempotency
   * key first wait for any in-flight request with the same key, then replay a
   * recorded answer if there is one, so a retry never queues behind itself.
   */
  async submit(skuId: string, op: Operation): Promise<OperationResult> {
    const intent = 'idempotency' in op ? op.idempotency : undefined;
    if (intent === undefined) return this.admit(skuId, op);
    const earlier = this.inFlightIdempotency.get(intent.storeKey);
    if (earlier !== undefined) await earlier;
    const replay = await this.replay(intent);
    if (replay !== undefined) {
      this.observer.operationDecided(op, replay);
      return replay;
    }
    const pending = Promise.resolve(this.admit(skuId, op));
    this.inFlightIdempotency.set(intent.storeKey, pending);
    try {
      return await pending;
    } finally {
      if (this.inFlightIdempotency.get(intent.storeKey) === pending) this.inFlightIdempotency.delete(intent.storeKey);
    }
  }

  private async replay(intent: IdempotencyIntent): Promise<OperationResult | undefined> {
    const ws = new WorkingSet();
    ws.load(intent.storeKey, await this.store.get<IdempotencyRecord>(intent.storeKey));
    const decision = checkIdempotency(ws, intent, this.nowMs());
    if (decision === undefined || !decision.ok) return decision;
    return {
      ok: true,
      status: decision.status,
      body: { ...decision.body, version: decision.version as number },
      replayed: true,
    };
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
    const state = writer.state;
    if (op.kind === 'reserve' && state !== undefined && available(state.record) === 0) {
      // Sold out is answered from memory: a flash sale's tail never reaches the store.
      const result = rejected('sold_out', `SKU ${skuId} is sold out`);
      this.observer.operationDecided(op, result);
      return result;
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
    const bound = this.options.shedQueueWaitMs ?? 0;
    return bound > 0 && writer.oldestWaitMs() > bound;
  }

  /** Finds which SKU an order belongs to, for routing a transition to its writer. */
  async orderSku(orderId: string): Promise<string | undefined> {
    return (await this.store.get<OrderRecord>(keys.order(orderId)))?.value.sku;
  }

  /**
   * Follows the store's change feed so SKU records written elsewhere (another
   * instance, where the store can see them) refresh the warm state. A writer
   * never goes back to an older version, so this process's own commits, which
   * arrive here too, change nothing.
   */
  followStore(): () => void {
    return this.store.subscribe(
      (change) => {
        for (const write of change.writes) {
          if (write.type !== 'put' || !write.key.startsWith(keys.skuPrefix)) continue;
          this.observeSku(write.value as SkuRecord, change.revision);
        }
      },
      (gap) => void this.rewarm(gap),
    );
  }

  private observeSku(record: SkuRecord, version: number): void {
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
      for await (const page of scanPrefix<SkuRecord>(this.store, keys.skuPrefix, scanPageEntries)) {
        for (const entry of page) this.observeSku(entry.value, entry.version);
      }
      this.observer.feedGapped?.(gap);
    } catch (error) {
      // Warm state older than the store only costs a conflict and a reload on the next commit.
      this.observer.feedGapped?.(gap, error);
    }
  }

  /** Stops taking new work and waits for every queued operation to be answered. */
  async drain(): Promise<void> {
    this.accepting = false;
    await Promise.all([...this.writers.values()].map((writer) => writer.drained()));
  }
}
