// The etcd store's change feed for one key prefix: one etcd watch over the
// keys under it, shared by every subscriber of that prefix. etcd sends a
// watch only the events of its own range, so a subscriber of SKU records
// costs neither etcd nor this process anything for the orders written beside
// them. The watch resumes from the last delivered revision after the stream
// breaks; when etcd has compacted that revision the feed reports a gap (the
// subscribers reload) and goes on.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { etcdStatusTimeoutMs, etcdWatchBackoffMsMax, etcdWatchBackoffMsMin } from '../constants.ts';
import type { ChangeListener, CommittedChange, GapListener, Write } from './contract.ts';

/** What a feed needs of its store. */
export interface EtcdFeedHost {
  client: Etcd3;
  /** etcd's current revision (a feed resumes there after a gap). */
  revision(): Promise<number>;
  /** Notes a revision etcd has shown. */
  see(revision: number): void;
  /** The store key of an etcd key (the namespace taken off). */
  unkey(raw: Buffer): string;
}

interface Subscriber {
  listener: ChangeListener;
  onGap: GapListener | undefined;
  /** Deliveries before this revision happened before the subscription. */
  fromRevision: number;
}

/**
 * A put from the change feed whose value is parsed when first read. A value
 * that is not JSON throws where it is read, inside that subscriber's call,
 * which the feed isolates.
 */
function lazyPut(key: string, raw: Buffer): Write {
  let parsed: { value: unknown } | undefined;
  return {
    type: 'put',
    key,
    get value() {
      parsed ??= { value: JSON.parse(raw.toString('utf8')) };
      return parsed.value;
    },
  };
}

export class EtcdFeed {
  private readonly host: EtcdFeedHost;
  /** The etcd keys this feed watches start with these bytes (namespace and prefix). */
  private readonly range: Buffer;
  private readonly subscribers = new Set<Subscriber>();
  private watcher: Watcher | undefined;
  /** The last revision the feed delivered (or resumed after, past a gap). */
  private feedRevision = 0;
  private closed = false;

  constructor(host: EtcdFeedHost, range: Buffer) {
    this.host = host;
    this.range = range;
  }

  get idle(): boolean {
    return this.subscribers.size === 0;
  }

  /** Subscribes from `afterRevision` (the latest revision the store has seen); returns the unsubscribe. */
  subscribe(listener: ChangeListener, onGap: GapListener | undefined, afterRevision: number): () => void {
    const subscriber: Subscriber = { listener, onGap, fromRevision: afterRevision + 1 };
    this.subscribers.add(subscriber);
    if (this.watcher === undefined) {
      this.feedRevision = afterRevision;
      this.startWatch(afterRevision + 1);
    }
    return () => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0) this.stopWatch();
    };
  }

  private startWatch(fromRevision: number): void {
    if (this.closed) return;
    const watcher = this.host.client.watch().prefix(this.range).startRevision(String(fromRevision)).watcher();
    this.watcher = watcher;
    watcher.on('data', (response) => {
      if (this.watcher !== watcher) return;
      try {
        this.deliverEvents(response.events);
      } catch (error) {
        // A value under our prefix that is not ours (not JSON) must not take the process down.
        process.emitWarning(`change feed could not read a watch event: ${(error as Error).stack ?? error}`);
      }
      // The feed advances only by the events it delivered: while a watch catches up, each
      // response's header carries etcd's current revision, not the last event sent, so
      // resuming after the header could skip events.
    });
    watcher.on('disconnected', () => {
      // Resume exactly after what was delivered, whatever etcd3 tracked meanwhile.
      watcher.request.start_revision = String(this.feedRevision + 1);
    });
    watcher.on('error', (error: Error) => {
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      void this.recover(error);
    });
  }

  /** The watch was cancelled (etcd compacted the revision it resumes from): report the gap, then go on. */
  private async recover(error: Error): Promise<void> {
    const fromRevision = this.feedRevision + 1;
    // etcd 3.4 cancels a watch whose start revision it has compacted, often without a reason text.
    const reason = `etcd cancelled the watch resuming at revision ${fromRevision} (${error.message.replace(/:\s*$/, '')}); history before the compacted revision is gone`;
    for (let attempt = 0; !this.closed && this.subscribers.size > 0; attempt++) {
      try {
        const current = await this.host.revision();
        this.feedRevision = current;
        for (const subscriber of this.subscribers) {
          subscriber.onGap?.({ fromRevision, resumedAfterRevision: current, reason });
        }
        this.startWatch(current + 1);
        return;
      } catch {
        // Retried for as long as the feed is wanted (like the watch itself), at a capped pace.
        await sleep(Math.min(etcdWatchBackoffMsMax, etcdWatchBackoffMsMin * 2 ** Math.min(attempt, 16)));
      }
    }
  }

  private deliverEvents(events: readonly { type: string; kv: IKeyValue }[]): void {
    let change: { revision: number; writes: Write[] } | undefined;
    for (const event of events) {
      const revision = Number(event.kv.mod_revision);
      if (revision <= this.feedRevision) continue; // already delivered before a reconnect
      if (change && change.revision !== revision) {
        this.deliver(change);
        change = undefined;
      }
      change ??= { revision, writes: [] };
      const key = this.host.unkey(event.kv.key);
      change.writes.push(event.type === 'Delete' ? { type: 'delete', key } : lazyPut(key, event.kv.value));
    }
    if (change) this.deliver(change);
  }

  private deliver(change: CommittedChange): void {
    assert.ok(change.revision > this.feedRevision, `revision ${change.revision} delivered out of order`);
    this.feedRevision = change.revision;
    this.host.see(change.revision);
    for (const subscriber of this.subscribers) {
      if (change.revision < subscriber.fromRevision) continue;
      try {
        subscriber.listener(change);
      } catch (error) {
        process.emitWarning(
          `change listener failed at revision ${change.revision}: ${(error as Error).stack ?? error}`,
        );
      }
    }
  }

  private stopWatch(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) void watcher.cancel().catch(() => undefined);
  }

  /** Stops the watch (bounded: cancelling waits for etcd to confirm, and with etcd gone that never comes). */
  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) await Promise.race([watcher.cancel().catch(() => undefined), sleep(etcdStatusTimeoutMs)]);
  }
}
