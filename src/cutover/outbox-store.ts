// The outbox: a store decorator that records, in every commit it passes on,
// the commit's own mirrored writes as one more key, `outbox/<seq>`. The
// entry is part of the same atomic commit, so a commit and its outbox entry
// land together or not at all: a process that dies between the two stores
// can lose nothing, because there is no "between" on this side. The mirror
// worker (mirror-worker.ts) applies the entries to the other store in
// sequence order and deletes them once applied.
//
// Sequence numbers are handed out as commits are issued. Two commits that
// write the same key are ordered by that key's version check: the later one
// was read, and so issued, after the earlier one landed (on LMDB, which
// applies commits in issue order, a pipelined batch is issued after the one
// it is layered on). So applying entries in sequence order applies every
// key's writes in their commit order. A commit still in flight holds back
// the entries after it: the worker reads only up to `settledThrough`, below
// which every commit has landed or failed. A commit that failed without a
// clear outcome (an etcd call that timed out may still apply) is settled
// only once its entry has been read back after `outboxUnknownSettleMs`.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { mirrorRetryBackoffMsMax, outboxUnknownSettleMs, outboxWritesPerCommit } from '../constants.ts';
import { isMirrored, keys, type OutboxEntry, type OutboxMeta, seqOfOutboxKey } from '../layout.ts';
import {
  type PendingCommit,
  prefixEnd,
  type Store,
  type StoreLimits,
  type VersionCheck,
  type Write,
} from '../store/contract.ts';
import { DelegatingStore } from '../store/delegating-store.ts';
import { assertOutboxMeta } from './records.ts';

export class OutboxStore extends DelegatingStore {
  private readonly ownLimits: StoreLimits;
  /** This outbox's identity: a mirror's resume point names the stream it follows. */
  readonly stream: string;
  /** The last sequence number handed out. */
  private issued: number;
  /** Every commit numbered up to here has landed or failed. */
  private settled: number;
  private readonly settledAhead = new Set<number>();
  /** Entries up to here were applied and deleted (the worker says so). */
  private trimmed: number;
  private readonly settledWaiters: { seq: number; resolve: () => void }[] = [];
  private readonly listeners = new Set<() => void>();
  private closed = false;

  private constructor(inner: Store, meta: OutboxMeta, lastSeq: number) {
    super(inner);
    this.stream = meta.stream;
    this.trimmed = meta.trimmedThrough;
    this.issued = Math.max(lastSeq, meta.trimmedThrough);
    this.settled = this.issued;
    // The entry and its copy of the writes go in the same commit as the writes.
    this.ownLimits = {
      commitChecksMax: inner.limits.commitChecksMax,
      commitWritesMax: inner.limits.commitWritesMax - outboxWritesPerCommit,
      commitBytesMax: Math.floor(inner.limits.commitBytesMax / 2),
    };
  }

  /** Opens the outbox of `store`: its identity (made on first use) and where its numbering goes on. */
  static async open(store: Store): Promise<OutboxStore> {
    let meta = (await store.get<OutboxMeta>(keys.outboxMeta))?.value;
    if (meta === undefined) {
      const fresh: OutboxMeta = { stream: randomUUID(), trimmedThrough: 0 };
      const made = await store.commit([{ key: keys.outboxMeta, version: 0 }], [put(keys.outboxMeta, fresh)]);
      meta = made.ok ? fresh : (await store.get<OutboxMeta>(keys.outboxMeta))?.value;
    }
    assertOutboxMeta(meta, store.kind);
    return new OutboxStore(store, meta, await lastSeq(store, meta.trimmedThrough));
  }

  override get limits(): StoreLimits {
    return this.ownLimits;
  }

  /** The last sequence number handed to a commit. */
  get issuedSeq(): number {
    return this.issued;
  }

  /** Every commit numbered up to here has landed or failed: the worker reads no further. */
  get settledThrough(): number {
    return this.settled;
  }

  /** Entries up to here have been applied and deleted. */
  get trimmedThrough(): number {
    return this.trimmed;
  }

  /** Entries recorded and not yet deleted (an upper bound: a failed commit leaves its number unused). */
  get entries(): number {
    return this.issued - this.trimmed;
  }

  /** The worker deleted the entries through `seq`. */
  noteTrimmed(seq: number): void {
    this.trimmed = Math.max(this.trimmed, seq);
  }

  /** Resolves once every commit numbered up to `seq` has landed or failed. */
  whenSettled(seq: number): Promise<void> {
    if (this.settled >= seq) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push({ seq, resolve }));
  }

  /** Calls `listener` whenever `settledThrough` advances; returns the function that stops it. */
  onSettled(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  override commit(checks: readonly VersionCheck[], writes: readonly Write[]): PendingCommit {
    const mirrored = writes.filter((write) => isMirrored(write.key));
    if (mirrored.length === 0) return this.inner.commit(checks, writes);
    const seq = ++this.issued;
    const entry: OutboxEntry = { atMs: Date.now(), writes: mirrored };
    // The caller gets the store's own pending commit (it may carry the revision at issue).
    const pending = this.inner.commit(checks, [...writes, put(keys.outboxEntry(seq), entry)]);
    pending.then(
      () => this.settle(seq),
      () => void this.settleUnclear(seq),
    );
    return pending;
  }

  /**
   * A commit that threw may still apply (an etcd call that timed out): its
   * entry is read back once it can no longer appear, and only then is its
   * number settled. LMDB applies a transaction whole or not at all, at once.
   */
  private async settleUnclear(seq: number): Promise<void> {
    if (this.inner.kind === 'etcd') await sleep(outboxUnknownSettleMs);
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.inner.get(keys.outboxEntry(seq));
        break;
      } catch {
        await sleep(Math.min(mirrorRetryBackoffMsMax, 100 * 2 ** Math.min(attempt, 10)));
      }
    }
    this.settle(seq);
  }

  private settle(seq: number): void {
    this.settledAhead.add(seq);
    const before = this.settled;
    while (this.settledAhead.delete(this.settled + 1)) this.settled++;
    if (this.settled === before) return;
    for (let i = this.settledWaiters.length - 1; i >= 0; i--) {
      const waiter = this.settledWaiters[i]!;
      if (waiter.seq > this.settled) continue;
      this.settledWaiters.splice(i, 1);
      waiter.resolve();
    }
    for (const listener of this.listeners) listener();
  }

  /** Stops waiting on unclear commits; the store itself is closed by whoever opened it. */
  override async close(): Promise<void> {
    this.closed = true;
  }
}

function put(key: string, value: unknown): Write {
  return { type: 'put', key, value };
}

/**
 * The highest sequence number in the outbox (or `floor` when it holds none
 * above it), found without listing it: the contract reads ranges upward, so
 * a doubling search for the first number with nothing at or above it, then
 * a binary search below that. Some 2·log2(entries) single-key reads.
 */
export async function lastSeq(store: Store, floor: number): Promise<number> {
  const end = prefixEnd(keys.outboxPrefix);
  const firstAtOrAbove = async (seq: number) =>
    (await store.range({ start: keys.outboxEntry(seq), end, limit: 1 }))[0]?.key;
  const first = await firstAtOrAbove(floor + 1);
  if (first === undefined) return floor;
  let low = seqOfOutboxKey(first); // an entry exists here
  let step = 1;
  for (;;) {
    const found = await firstAtOrAbove(low + step);
    if (found === undefined) break;
    low = seqOfOutboxKey(found);
    step *= 2;
  }
  // Nothing at or above low + step; an entry at low.
  let high = low + step;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const found = await firstAtOrAbove(middle);
    if (found === undefined) high = middle;
    else low = seqOfOutboxKey(found);
  }
  assert.ok(Number.isSafeInteger(low), 'outbox sequence numbers are safe integers');
  return low;
}
