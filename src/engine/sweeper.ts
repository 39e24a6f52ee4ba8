// The sweeper releases lapsed reservations and forgets lapsed idempotency
// records. It runs at its own pace, a bounded number of entries per sweep, so
// a backlog (say, after a long outage) drains over several sweeps instead of
// flooding the writers at once. Expiries go through the SKU writers like any
// other transition, so they are batched and decided against warm state.
//
// Reservations lapse in creation order (one TTL for all), so the sweep walks
// each SKU's orders (`sku-orders/`) from a mark: the first order that may
// still be `created`. It reads the orders up to the first one not due yet,
// asks the writer to expire those still `created`, and moves the mark past
// every order it saw settled. The mark is saved (`sweep/<sku>`) so a restart
// does not walk a SKU's whole history again; it is only a hint, since it only
// ever passes orders that can no longer lapse. SKUs with nothing reserved,
// or whose next order is not due, cost nothing.
//
// With a mirror, each SKU's orders are read from, and its mark written to,
// the store authoritative for it (the engine's routing); idempotency records
// are dropped on each store only for SKUs authoritative there, while no move
// switches a SKU's store, so a drop never reaches a mirror after the SKU has
// moved to it.
//
// In distributed mode, each instance expires the reservations of the SKUs it
// writes (`sweeps`): an expiry is a transition its SKU's writer decides, and
// only the owner's writer can commit it. Lapsed idempotency records are
// dropped by the owner of their SKU too, so instances do not race to delete
// the same keys (their version checks would make that harmless, but every
// race is a failed commit); an expiry entry whose record is gone is dropped
// by whoever reads it first.
import { scanPageEntries, sweepEntriesMax } from '../constants.ts';
import type { OrderRecord } from '../domain/types.ts';
import {
  type IdempotencyRecord,
  idempotencyIdOfExpiry,
  keys,
  type SkuOrderEntry,
  seqOfKey,
  skuOfIdempotencyRecord,
} from '../layout.ts';
import type { Entry, Store, VersionCheck, Write } from '../store/contract.ts';
import { prefixEnd } from '../store/contract.ts';
import type { Engine } from './engine.ts';

export interface SweepReport {
  expired: number;
  idempotencyRecordsDropped: number;
}

interface SkuMark {
  /** Orders before this seq are settled: none of them can lapse any more. */
  fromSeq: number;
  /** Nothing of this SKU is due before this time. */
  nextDueMs: number;
}

export class Sweeper {
  private readonly engine: Engine;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly onError: (error: unknown) => void;
  private readonly marks = new Map<string, SkuMark>();
  private readonly sweeps: (skuId: string) => boolean;

  /**
   * `sweeps` picks the SKUs whose reservations and idempotency records this
   * instance sweeps (in distributed mode, those it writes); each SKU's own
   * store is the engine's routing's.
   */
  constructor(
    engine: Engine,
    intervalMs: number,
    onError: (error: unknown) => void,
    sweeps: (skuId: string) => boolean = () => true,
  ) {
    this.engine = engine;
    this.intervalMs = intervalMs;
    this.onError = onError;
    this.sweeps = sweeps;
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep()
        .catch(this.onError)
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One bounded pass; exposed so tests and the CLI can sweep on demand. */
  async sweep(): Promise<SweepReport> {
    const expired = await this.expireReservations();
    const idempotencyRecordsDropped = await this.dropIdempotencyRecords();
    return { expired, idempotencyRecordsDropped };
  }

  private async expireReservations(): Promise<number> {
    const nowMs = this.engine.nowMs();
    let budget = sweepEntriesMax;
    let expired = 0;
    const moved = new Map<Store, Write[]>();
    for (const skuId of this.engine.skuIds()) {
      if (budget <= 0) break;
      if ((this.engine.getSku(skuId)?.record.reserved ?? 0) === 0 || !this.sweeps(skuId)) continue;
      const mark = this.marks.get(skuId) ?? (await this.loadMark(skuId));
      if (mark.nextDueMs > nowMs) continue;
      const pass = await this.sweepSku(skuId, mark, nowMs, budget);
      budget -= pass.read;
      expired += pass.expired;
      if (pass.fromSeq > mark.fromSeq) {
        const store = this.engine.routing.storeFor(skuId);
        const writes = moved.get(store) ?? [];
        writes.push({ type: 'put', key: keys.sweep(skuId), value: pass.fromSeq });
        moved.set(store, writes);
      }
      this.marks.set(skuId, { fromSeq: pass.fromSeq, nextDueMs: pass.nextDueMs });
    }
    // The marks are hints (they only pass settled orders), so they need no checks; each store keeps its own.
    for (const [store, writes] of moved) await store.commit([], writes);
    return expired;
  }

  private async loadMark(skuId: string): Promise<SkuMark> {
    const saved = await this.engine.routing.storeFor(skuId).get<number>(keys.sweep(skuId));
    return { fromSeq: saved?.value ?? 0, nextDueMs: 0 };
  }

  /**
   * Reads the SKU's orders from its mark up to the first not due yet (at most
   * `budget`), expires those still `created`, and says how far the mark moves.
   */
  private async sweepSku(skuId: string, mark: SkuMark, nowMs: number, budget: number) {
    const ttlMs = this.engine.reservationTtlMs;
    const limit = Math.min(budget, scanPageEntries);
    const store = this.engine.routing.storeFor(skuId);
    const entries = await store.range<SkuOrderEntry>({
      start: keys.skuOrder(skuId, mark.fromSeq),
      end: prefixEnd(keys.skuOrdersPrefix(skuId)),
      limit,
    });
    // Created under this TTL and not due: nothing after it is due either. (An order made
    // under a longer TTL, before a restart, is passed over without stopping the walk.)
    const stop = entries.findIndex(
      (entry) => entry.value.expiresAtMs > nowMs && entry.value.createdAtMs + ttlMs > nowMs,
    );
    const due = entries.slice(0, stop === -1 ? entries.length : stop);
    const orders = await store.getMany<OrderRecord>(due.map((entry) => keys.order(entry.value.id)));
    const settled = await Promise.all(due.map((entry, i) => this.settle(skuId, entry.value, orders[i], nowMs)));
    const firstOpen = settled.indexOf(false);
    const through = firstOpen === -1 ? due.length : firstOpen;
    const fromSeq = through === 0 ? mark.fromSeq : seqOfKey(due[through - 1]!.key) + 1;
    let nextDueMs: number;
    if (firstOpen !== -1 || (stop === -1 && entries.length === limit))
      nextDueMs = 0; // look again next sweep
    else if (stop !== -1) {
      const next = entries[stop]!.value;
      nextDueMs = Math.min(next.expiresAtMs, next.createdAtMs + ttlMs);
    } else nextDueMs = nowMs + ttlMs; // every order is settled; later ones lapse a TTL from now at the earliest
    return { read: entries.length, expired: settled.filter((done) => done === 'expired').length, fromSeq, nextDueMs };
  }

  /** Expires one order if it lapsed; true (or 'expired') when it can no longer lapse, false when it still may. */
  private async settle(
    skuId: string,
    entry: SkuOrderEntry,
    order: Entry<OrderRecord> | undefined,
    nowMs: number,
  ): Promise<boolean | 'expired'> {
    if (order === undefined) return false; // not visible yet: look again next sweep
    if (order.value.state !== 'created') return true;
    if (entry.expiresAtMs > nowMs) return false;
    const result = await this.engine.submit(skuId, { kind: 'expire', orderId: entry.id });
    if (result.ok) return 'expired';
    return result.code === 'illegal_transition'; // paid or cancelled meanwhile
  }

  private async dropIdempotencyRecords(): Promise<number> {
    let dropped = 0;
    const routing = this.engine.routing;
    // A store no SKU is on holds only copies, dropped where their SKUs are (it may be down meanwhile).
    for (const store of routing.stores()) {
      if (routing.holdsAny(store)) dropped += await routing.stable(() => this.dropOn(store));
    }
    return dropped;
  }

  /** Drops the lapsed idempotency records of `store` whose SKU is authoritative there. */
  private async dropOn(store: Store): Promise<number> {
    const nowMs = this.engine.nowMs();
    const { commitChecksMax, commitWritesMax } = store.limits;
    const due = await store.range({
      start: keys.idempotencyExpiryPrefix,
      end: keys.idempotencyExpiryDueEnd(nowMs),
      // Each entry costs up to two checks and two deletes.
      limit: Math.min(sweepEntriesMax, Math.floor(Math.min(commitChecksMax, commitWritesMax) / 2)),
    });
    if (due.length === 0) return 0;
    const recordKeys = due.map((entry) => keys.idempotency(idempotencyIdOfExpiry(entry.key)));
    const records = await store.getMany<IdempotencyRecord>(recordKeys);
    const checks: VersionCheck[] = [];
    const writes: Write[] = [];
    due.forEach((entry, i) => {
      const record = records[i];
      const skuId = record && skuOfIdempotencyRecord(record.value);
      // A mirror copy is dropped on its SKU's own store, and the drop mirrored here.
      if (skuId !== undefined && this.engine.routing.storeFor(skuId) !== store) return;
      if (skuId !== undefined && !this.sweeps(skuId)) return;
      checks.push({ key: entry.key, version: entry.version });
      writes.push({ type: 'delete', key: entry.key });
      if (record !== undefined && record.value.expiresAtMs <= nowMs) {
        checks.push({ key: record.key, version: record.version });
        writes.push({ type: 'delete', key: record.key });
      }
    });
    if (writes.length === 0) return 0;
    // A conflict means a writer touched one of these keys meanwhile; the next sweep retries.
    const result = await store.commit(checks, writes);
    return result.ok ? writes.filter((write) => write.key.startsWith(keys.idempotencyExpiryPrefix)).length : 0;
  }
}
