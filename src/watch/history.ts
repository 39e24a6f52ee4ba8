// The bounded, revision-indexed history of stock events that Last-Event-ID
// resumes read from: a ring of the last `capacity` events in revision order.
// `coveredFrom` is the revision after which the ring holds every event, so a
// resume from revision r is exact when r >= coveredFrom.
import assert from 'node:assert/strict';

export interface HistoryEntry {
  revision: number;
  sku: string;
  product: string;
  frame: Buffer;
}

export class HistoryRing {
  private readonly entries: (HistoryEntry | undefined)[];
  private start = 0;
  private count = 0;
  private covered: number;

  constructor(capacity: number, coveredFrom: number) {
    assert.ok(Number.isSafeInteger(capacity) && capacity > 0, 'history capacity must be a positive integer');
    this.entries = new Array(capacity);
    this.covered = coveredFrom;
  }

  get size(): number {
    return this.count;
  }

  /** Every event with a revision above this is in the ring. */
  get coveredFrom(): number {
    return this.covered;
  }

  /** Bytes of serialized events the ring holds. */
  bytes(): number {
    let total = 0;
    for (let i = 0; i < this.count; i++) total += this.at(i).frame.length;
    return total;
  }

  private at(index: number): HistoryEntry {
    return this.entries[(this.start + index) % this.entries.length]!;
  }

  push(entry: HistoryEntry): void {
    const last = this.count > 0 ? this.at(this.count - 1).revision : this.covered;
    assert.ok(entry.revision >= last, `history revision ${entry.revision} after ${last}`);
    if (this.count === this.entries.length) {
      this.covered = this.at(0).revision;
      this.entries[this.start] = entry;
      this.start = (this.start + 1) % this.entries.length;
    } else {
      this.entries[(this.start + this.count) % this.entries.length] = entry;
      this.count++;
    }
  }

  /** Index of the first entry with a revision above `revision` (binary search; revisions ascend). */
  private firstAfter(revision: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.at(mid).revision <= revision) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Entries with revision in (after, through], oldest first. */
  *between(after: number, through: number): Generator<HistoryEntry> {
    for (let i = this.firstAfter(after); i < this.count; i++) {
      const entry = this.at(i);
      if (entry.revision > through) return;
      yield entry;
    }
  }

  /** The latest revision in the ring at or below `revision`, or `coveredFrom` when there is none. */
  lastAtOrBelow(revision: number): number {
    const index = this.firstAfter(revision);
    return index === 0 ? this.covered : this.at(index - 1).revision;
  }
}
