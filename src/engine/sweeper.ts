// The sweeper releases lapsed reservations and forgets lapsed idempotency
// records. It runs at its own pace, a bounded number of entries per sweep, so
// a backlog (say, after a long outage) drains over several sweeps instead of
// flooding the writers at once. Expiries go through the SKU writers like any
// other transition, so they are batched and decided against warm state.
import { sweepEntriesMax } from '../constants.ts';
import type { Store, VersionCheck, Write } from '../store/contract.ts';
import { keys } from '../store/keys.ts';
import type { IdempotencyRecord } from './decide.ts';
import type { Engine } from './engine.ts';

export interface SweepReport {
  expired: number;
  idempotencyRecordsDropped: number;
}

export class Sweeper {
  private readonly engine: Engine;
  private readonly store: Store;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly onError: (error: unknown) => void;

  constructor(engine: Engine, store: Store, intervalMs: number, onError: (error: unknown) => void) {
    this.engine = engine;
    this.store = store;
    this.intervalMs = intervalMs;
    this.onError = onError;
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
    const due = await this.store.range<string>({
      start: keys.orderExpiryPrefix,
      end: keys.orderExpiryDueEnd(this.engine.nowMs()),
      limit: sweepEntriesMax,
    });
    const results = await Promise.all(
      due.map((entry) => this.engine.submit(entry.value, { kind: 'expire', orderId: keys.afterTimestamp(entry.key) })),
    );
    return results.filter((result) => result.ok).length;
  }

  private async dropIdempotencyRecords(): Promise<number> {
    const nowMs = this.engine.nowMs();
    const due = await this.store.range({
      start: keys.idempotencyExpiryPrefix,
      end: keys.idempotencyExpiryDueEnd(nowMs),
      limit: Math.min(sweepEntriesMax, Math.floor(this.store.limits.commitOpsMax / 4)),
    });
    if (due.length === 0) return 0;
    const recordKeys = due.map((entry) => keys.afterTimestamp(entry.key));
    const records = await this.store.getMany<IdempotencyRecord>(recordKeys);
    const checks: VersionCheck[] = [];
    const writes: Write[] = [];
    due.forEach((entry, i) => {
      checks.push({ key: entry.key, version: entry.version });
      writes.push({ type: 'delete', key: entry.key });
      const record = records[i];
      if (record !== undefined && record.value.expiresAtMs <= nowMs) {
        checks.push({ key: record.key, version: record.version });
        writes.push({ type: 'delete', key: record.key });
      }
    });
    // A conflict means a writer touched one of these keys meanwhile; the next sweep retries.
    const result = await this.store.commit(checks, writes);
    return result.ok ? due.length : 0;
  }
}
