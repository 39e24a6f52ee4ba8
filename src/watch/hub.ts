// The watch hub: follows the store's change feed of SKU records (every
// durable commit that writes one, in revision order, including commits other
// instances made where the store can see them), keeps the latest stock state
// of every SKU and a bounded history of stock events, and fans events out to
// SSE watchers.
//
// Cost per watcher is a few fields: a cursor (the revision through which it
// has every event it wants), a flag saying it fell behind, and its socket.
// Events are serialized once, at ingest; a broadcast pass concatenates the
// pass's events once per distinct filter and writes the same bytes to every
// watcher with that filter, yielding to the event loop every
// `watchWriteSliceSubscribers` sockets so reservations keep flowing. A watcher
// whose socket still holds unsent bytes is skipped (nothing more is queued for
// it, so its memory stays bounded by one write); once its socket has drained
// it gets the latest state of each of its SKUs that changed meanwhile
// (coalescing), and if it stays behind for `watchLagRevisionsMax` revisions,
// or for `watchStalledHeartbeatsMax` heartbeats, it is dropped with a final
// `disconnect` event saying why.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  scanPageEntries,
  watchBroadcastRestRatio,
  watchCloseGraceMs,
  watchHistoryEventsMax,
  watchLagRevisionsMax,
  watchPassEventsMax,
  watchStalledHeartbeatsMax,
  watchWriteBytesMax,
  watchWriteSliceSubscribers,
} from '../constants.ts';
import { available } from '../domain/ledger.ts';
import type { SkuRecord } from '../domain/types.ts';
import { keys } from '../layout.ts';
import { type ChangeFeedGap, type CommittedChange, type Store, scanPrefix } from '../store/contract.ts';
import { matches, type WatchFilter } from './filter.ts';
import { type HistoryEntry, HistoryRing } from './history.ts';
import {
  type DropReason,
  disconnectFrame,
  heartbeatFrame,
  retryFrame,
  type StockState,
  snapshotFrame,
  stockFrame,
} from './sse.ts';

export interface WatchHubOptions {
  subscribersMax: number;
  heartbeatIntervalMs: number;
  /** History ring size; the default is `watchHistoryEventsMax`. */
  historyEventsMax?: number;
}

/** Running totals the metrics read when scraped. */
export interface WatchStats {
  /** Broadcast passes run, and the time they kept the thread busy writing (ms). */
  passes: number;
  passBusyMs: number;
  eventsSent: number;
  eventsCoalesced: number;
  dropped: Record<DropReason, number>;
}

interface Subscriber {
  socket: Socket;
  filter: WatchFilter;
  /** Every event this watcher wants with a revision up to here has been written (or coalesced away). */
  cursor: number;
  /** Its socket held unsent bytes when there was something to send: it gets coalesced state once drained. */
  behind: boolean;
  stalledHeartbeats: number;
  gone: boolean;
}

interface PassFrames {
  bytes: Buffer;
  events: number;
}

export class WatchHub {
  private readonly store: Store;
  private readonly options: WatchHubOptions;
  private readonly subscribers = new Set<Subscriber>();
  /** Sockets of dropped watchers still flushing their final event (destroyed after `watchCloseGraceMs`). */
  private readonly closing = new Set<Socket>();
  private readonly states = new Map<string, StockState>();
  private readonly productSkus = new Map<string, Set<string>>();
  private history: HistoryRing;
  /** The latest store revision the feed delivered. */
  private revision = 0;
  /** Broadcast passes have run through this revision. */
  private dispatched = 0;
  private passScheduled = false;
  /** `performance.now()` before which the next pass may not start (see schedulePass). */
  private nextPassNotBeforeMs = 0;
  private closed = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatRunning = false;
  private unsubscribe: (() => void) | undefined;
  private readonly passListeners = new Set<(throughRevision: number) => void>();
  readonly stats: WatchStats = {
    passes: 0,
    passBusyMs: 0,
    eventsSent: 0,
    eventsCoalesced: 0,
    dropped: { lagging: 0, stalled: 0, shutdown: 0 },
  };

  constructor(store: Store, options: WatchHubOptions) {
    assert.ok(options.subscribersMax > 0 && options.heartbeatIntervalMs > 0);
    this.store = store;
    this.options = options;
    this.history = new HistoryRing(options.historyEventsMax ?? watchHistoryEventsMax, 0);
  }

  /** Follows the change feed, then loads every SKU's current state (feed first, so no commit falls between). */
  async start(): Promise<void> {
    this.unsubscribe = this.store.subscribe(
      keys.skuPrefix,
      (change) => this.ingest(change),
      (gap) => void this.recoverFromGap(gap),
    );
    const startRevision = await this.store.revision();
    this.revision = Math.max(this.revision, startRevision);
    this.dispatched = this.revision;
    // Events the feed delivered while we read the revision are older than any resume we can serve exactly.
    this.history = new HistoryRing(this.options.historyEventsMax ?? watchHistoryEventsMax, this.revision);
    await this.loadStates();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  /** Reads every SKU's current state from the store (newer than what the hub holds wins). */
  private async loadStates(): Promise<void> {
    for await (const page of scanPrefix<SkuRecord>(this.store, keys.skuPrefix, scanPageEntries)) {
      for (const entry of page) {
        const current = this.states.get(entry.value.sku);
        if (current === undefined || current.version < entry.version) this.setState(entry.value, entry.version);
      }
    }
  }

  /**
   * The change feed lost commits (etcd compacted them first): the states are
   * read again, history restarts after the gap (a resume from inside it gets
   * `resync`), and every watcher gets the latest state of what changed.
   */
  async recoverFromGap(gap: ChangeFeedGap): Promise<void> {
    if (this.closed) return;
    try {
      await this.loadStates();
    } catch {
      // The store is unreachable: each SKU's next commit brings its state up to date.
    }
    this.revision = Math.max(this.revision, gap.resumedAfterRevision);
    this.history = new HistoryRing(this.options.historyEventsMax ?? watchHistoryEventsMax, this.revision);
    this.dispatched = this.revision;
    for (const subscriber of this.subscribers) if (!subscriber.gone) this.coalesceWhenDrained(subscriber);
  }

  /** The stock a watcher of `sku` is shown now. */
  stockOf(sku: string): Readonly<StockState> | undefined {
    return this.states.get(sku);
  }

  /** False once the hub is closed (the service is shutting down): no new watchers. */
  get accepting(): boolean {
    return !this.closed;
  }

  /**
   * Calls `listener` after each broadcast pass with the revision it carried
   * events through: by then every in-step watcher's socket has been handed
   * the bytes. For instrumentation (the watch benchmark).
   */
  observePasses(listener: (throughRevision: number) => void): () => void {
    this.passListeners.add(listener);
    return () => this.passListeners.delete(listener);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  get full(): boolean {
    return this.subscribers.size >= this.options.subscribersMax;
  }

  get subscribersMax(): number {
    return this.options.subscribersMax;
  }

  /** Bytes written to watcher sockets that the kernel has not taken yet: the hub's whole per-watcher memory. */
  bufferedBytes(): number {
    let bytes = 0;
    for (const subscriber of this.subscribers) bytes += subscriber.socket.writableLength;
    for (const socket of this.closing) bytes += socket.writableLength;
    return bytes;
  }

  /** Sockets of dropped watchers that are still flushing their final event. */
  get closingCount(): number {
    return this.closing.size;
  }

  historyBytes(): number {
    return this.history.bytes();
  }

  /** The SKUs among `skus` the hub has never seen. */
  unknownSkus(skus: Iterable<string>): string[] {
    return [...skus].filter((sku) => !this.states.has(sku));
  }

  /** How many SKUs currently belong to `product`. */
  productSize(product: string): number {
    return this.productSkus.get(product)?.size ?? 0;
  }

  private setState(record: SkuRecord, version: number): StockState {
    const previous = this.states.get(record.sku);
    if (previous !== undefined && previous.product !== record.product) {
      const members = this.productSkus.get(previous.product);
      members?.delete(record.sku);
      if (members?.size === 0) this.productSkus.delete(previous.product);
    }
    let members = this.productSkus.get(record.product);
    if (members === undefined) {
      members = new Set();
      this.productSkus.set(record.product, members);
    }
    members.add(record.sku);
    const state: StockState = {
      sku: record.sku,
      product: record.product,
      total: record.total,
      reserved: record.reserved,
      sold: record.sold,
      available: available(record),
      version,
    };
    this.states.set(record.sku, state);
    return state;
  }

  private ingest(change: CommittedChange): void {
    if (this.closed) return;
    // A commit made before start() read the revision may be delivered after it: its state
    // counts, but it is older than what history promises to cover.
    const historic = change.revision <= this.history.coveredFrom;
    let events = 0;
    for (const write of change.writes) {
      if (write.type !== 'put') continue;
      const record = write.value as SkuRecord;
      if ((this.states.get(record.sku)?.version ?? 0) >= change.revision) continue;
      const state = this.setState(record, change.revision);
      if (historic) continue;
      this.history.push({
        revision: change.revision,
        sku: state.sku,
        product: state.product,
        frame: stockFrame(state, change.revision),
      });
      events++;
    }
    this.revision = Math.max(this.revision, change.revision);
    if (events > 0) this.schedulePass();
  }

  private filterStates(filter: WatchFilter): StockState[] {
    const skus = filter.kind === 'skus' ? filter.skus : (this.productSkus.get(filter.product) ?? []);
    const states: StockState[] = [];
    for (const sku of skus) {
      const state = this.states.get(sku);
      if (state !== undefined) states.push(state);
    }
    return states;
  }

  /**
   * Starts a stream on `socket` (its response head already written): the
   * snapshot, or the changes after `lastEventId` from history, or a `resync`
   * snapshot when history cannot cover that revision. The caller checked `full`.
   */
  subscribe(socket: Socket, filter: WatchFilter, lastEventId: number | undefined): void {
    assert.ok(!this.closed && !this.full, 'subscribe on a closed or full hub');
    // The client hung up while the request was being handled: its 'close' has already fired.
    if (socket.destroyed) return;
    const subscriber: Subscriber = {
      socket,
      filter,
      cursor: this.revision,
      behind: false,
      stalledHeartbeats: 0,
      gone: false,
    };
    this.subscribers.add(subscriber);
    socket.once('close', () => this.remove(subscriber));
    socket.on('drain', () => {
      if (subscriber.behind && !subscriber.gone && socket.writableLength === 0) this.coalesce(subscriber);
    });
    if (lastEventId === undefined) {
      this.write(subscriber, Buffer.concat([retryFrame, snapshotFrame(this.filterStates(filter), this.revision)]), 1);
    } else if (lastEventId > this.revision || lastEventId < this.history.coveredFrom) {
      const reason = lastEventId > this.revision ? 'unknown_revision' : 'history_expired';
      const frame = snapshotFrame(this.filterStates(filter), this.revision, { reason, lastEventId });
      this.write(subscriber, Buffer.concat([retryFrame, frame]), 1);
    } else {
      subscriber.cursor = lastEventId;
      this.write(subscriber, retryFrame, 0);
      this.catchUpFromHistory(subscriber);
    }
  }

  /** Writes and counts; a socket that does not take everything marks its watcher behind. */
  private write(subscriber: Subscriber, bytes: Buffer, events: number): void {
    if (!subscriber.socket.write(bytes)) subscriber.behind = true;
    this.stats.eventsSent += events;
  }

  /** Exact catch-up from history, one bounded write at a time, until caught up or the socket stops taking. */
  private catchUpFromHistory(subscriber: Subscriber): void {
    if (subscriber.cursor < this.history.coveredFrom) {
      this.coalesce(subscriber);
      return;
    }
    while (subscriber.cursor < this.revision && subscriber.socket.writableLength === 0 && !subscriber.gone) {
      const frames: Buffer[] = [];
      let bytes = 0;
      let through = this.revision;
      for (const entry of this.history.between(subscriber.cursor, this.revision)) {
        if (bytes >= watchWriteBytesMax) {
          through = entry.revision - 1;
          break;
        }
        if (!matches(subscriber.filter, entry.sku, entry.product)) continue;
        frames.push(entry.frame);
        bytes += entry.frame.length;
      }
      subscriber.cursor = through;
      if (frames.length > 0) this.write(subscriber, Buffer.concat(frames, bytes), frames.length);
    }
    if (subscriber.cursor < this.revision) subscriber.behind = true;
  }

  /** The latest state of each of the watcher's SKUs that changed after its cursor, in revision order. */
  private coalesce(subscriber: Subscriber): void {
    const changed = this.filterStates(subscriber.filter)
      .filter((state) => state.version > subscriber.cursor)
      .sort((a, b) => a.version - b.version);
    let skipped = 0;
    for (const entry of this.history.between(subscriber.cursor, this.revision)) {
      if (matches(subscriber.filter, entry.sku, entry.product)) skipped++;
    }
    this.stats.eventsCoalesced += Math.max(0, skipped - changed.length);
    subscriber.cursor = this.revision;
    subscriber.behind = false;
    if (changed.length > 0) {
      this.write(subscriber, Buffer.concat(changed.map((state) => stockFrame(state, state.version))), changed.length);
    }
  }

  /**
   * Starts the broadcast loop unless it is running. A pass may start only
   * `watchBroadcastRestRatio` times its own busy time after the previous one
   * ended, so fan-out takes a bounded share of the core however many
   * watchers there are; events that arrive meanwhile ride the next pass.
   */
  private schedulePass(): void {
    if (this.passScheduled || this.closed) return;
    this.passScheduled = true;
    const run = () => {
      this.runPasses().catch((error: unknown) => {
        process.emitWarning(`watch broadcast failed: ${(error as Error).stack ?? error}`);
      });
    };
    const waitMs = this.nextPassNotBeforeMs - performance.now();
    if (waitMs >= 1) setTimeout(run, waitMs);
    else setImmediate(run);
  }

  /** The next pass: up to `watchPassEventsMax` events after `from` (never splitting one revision). */
  private passEntries(from: number): { entries: HistoryEntry[]; to: number } {
    const entries: HistoryEntry[] = [];
    for (const entry of this.history.between(from, this.revision)) {
      if (entries.length >= watchPassEventsMax && entry.revision !== entries.at(-1)!.revision) {
        return { entries, to: entries.at(-1)!.revision };
      }
      entries.push(entry);
    }
    return { entries, to: this.revision };
  }

  private async runPasses(): Promise<void> {
    try {
      while (this.dispatched < this.revision && !this.closed) {
        const busyMs = await this.runPass();
        this.stats.passes++;
        this.stats.passBusyMs += busyMs;
        this.nextPassNotBeforeMs = performance.now() + busyMs * watchBroadcastRestRatio;
        const restMs = busyMs * watchBroadcastRestRatio;
        if (restMs >= 1 && this.dispatched < this.revision) await sleep(restMs);
      }
    } finally {
      this.passScheduled = false;
      if (this.dispatched < this.revision) this.schedulePass();
    }
  }

  /** One pass over every watcher; returns the time it spent writing (not the time it yielded). */
  private async runPass(): Promise<number> {
    const from = this.dispatched;
    // History evicted events no pass has carried yet: everyone gets coalesced state instead.
    const evicted = from < this.history.coveredFrom;
    const { entries, to } = this.passEntries(from);
    const lastEventBefore = this.history.lastAtOrBelow(from);
    const framesByFilter = new Map<string, PassFrames | null>();
    const subscribers = [...this.subscribers];
    let busyMs = 0;
    for (let start = 0; start < subscribers.length; start += watchWriteSliceSubscribers) {
      const sliceStartMs = performance.now();
      const end = Math.min(start + watchWriteSliceSubscribers, subscribers.length);
      for (let i = start; i < end; i++) {
        const subscriber = subscribers[i]!;
        if (subscriber.gone || subscriber.cursor >= to) continue;
        if (evicted) this.coalesceWhenDrained(subscriber);
        else this.deliver(subscriber, from, to, lastEventBefore, entries, framesByFilter);
      }
      busyMs += performance.now() - sliceStartMs;
      if (end < subscribers.length) await yieldToEventLoop();
      if (this.closed) return busyMs;
    }
    this.dispatched = to;
    for (const listener of this.passListeners) listener(to);
    return busyMs;
  }

  private coalesceWhenDrained(subscriber: Subscriber): void {
    if (subscriber.socket.writableLength > 0) this.fellBehind(subscriber);
    else this.coalesce(subscriber);
  }

  private fellBehind(subscriber: Subscriber): void {
    subscriber.behind = true;
    const lag = this.revision - subscriber.cursor;
    if (lag > watchLagRevisionsMax) {
      this.drop(subscriber, 'lagging', `the stream fell ${lag} revisions behind (limit ${watchLagRevisionsMax})`);
    }
  }

  private deliver(
    subscriber: Subscriber,
    from: number,
    to: number,
    lastEventBefore: number,
    entries: readonly HistoryEntry[],
    framesByFilter: Map<string, PassFrames | null>,
  ): void {
    if (subscriber.socket.writableLength > 0) {
      this.fellBehind(subscriber);
      return;
    }
    if (subscriber.behind) {
      this.coalesce(subscriber);
      return;
    }
    if (subscriber.cursor < lastEventBefore || subscriber.cursor > from) {
      this.catchUpFromHistory(subscriber);
      return;
    }
    // In step with the pass: the events of (from, to] it wants, serialized once for its filter.
    let frames = framesByFilter.get(subscriber.filter.key);
    if (frames === undefined) {
      const wanted = entries.filter((entry) => matches(subscriber.filter, entry.sku, entry.product));
      frames =
        wanted.length === 0
          ? null
          : {
              bytes: wanted.length === 1 ? wanted[0]!.frame : Buffer.concat(wanted.map((e) => e.frame)),
              events: wanted.length,
            };
      framesByFilter.set(subscriber.filter.key, frames);
    }
    subscriber.cursor = to;
    if (frames !== null) this.write(subscriber, frames.bytes, frames.events);
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning || this.closed) return;
    this.heartbeatRunning = true;
    try {
      const subscribers = [...this.subscribers];
      for (let start = 0; start < subscribers.length; start += watchWriteSliceSubscribers) {
        const end = Math.min(start + watchWriteSliceSubscribers, subscribers.length);
        for (let i = start; i < end; i++) this.beat(subscribers[i]!);
        if (end < subscribers.length) await yieldToEventLoop();
        if (this.closed) return;
      }
    } finally {
      this.heartbeatRunning = false;
    }
  }

  private beat(subscriber: Subscriber): void {
    if (subscriber.gone) return;
    if (subscriber.socket.writableLength > 0) {
      subscriber.stalledHeartbeats++;
      if (subscriber.stalledHeartbeats > watchStalledHeartbeatsMax) {
        this.drop(subscriber, 'stalled', `the socket took nothing for ${subscriber.stalledHeartbeats} heartbeats`);
      }
      return;
    }
    subscriber.stalledHeartbeats = 0;
    if (subscriber.behind) this.coalesce(subscriber);
    subscriber.socket.write(heartbeatFrame);
  }

  private remove(subscriber: Subscriber): void {
    if (subscriber.gone) return;
    subscriber.gone = true;
    this.subscribers.delete(subscriber);
  }

  /** Ends a watcher's stream with a final `disconnect` event; the socket gets a grace period to flush it. */
  private drop(subscriber: Subscriber, reason: DropReason, detail: string): void {
    if (subscriber.gone) return;
    this.remove(subscriber);
    this.stats.dropped[reason]++;
    const socket = subscriber.socket;
    this.closing.add(socket);
    const timer = setTimeout(() => socket.destroy(), watchCloseGraceMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      this.closing.delete(socket);
    });
    socket.end(disconnectFrame(reason, detail));
  }

  /** Ends every stream (reason `shutdown`) and stops following the store. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    this.unsubscribe?.();
    for (const subscriber of [...this.subscribers]) {
      this.drop(subscriber, 'shutdown', 'the server is shutting down; reconnect with Last-Event-ID');
    }
  }
}
