// The fence: a store decorator that makes every commit writing a SKU record
// carry a check on the owner key of the SKU's shard, at the revision this
// instance took it (its fence token). etcd applies the commit only while
// that key is still this instance's, so an instance that lost a shard (its
// lease lapsed while it was paused, say, and another took the shard) cannot
// write the shard's SKUs however stale its own view is. A commit of a shard
// this instance does not hold is refused before it is sent. Both refusals are
// `FenceRefusal`s: failed commits that applied nothing, never conflicts to
// retry here, so the SKU writer answers them and the router sends the
// operations to the shard's owner.
//
// Every commit that touches a SKU's keys writes its SKU record (the SKU
// writer checks and writes it in every batch), so looking for `sku/` keys
// among the writes finds the shard of every such commit. Other commits (the
// layout marker, sweep marks, lapsed idempotency records) need no owner.
import assert from 'node:assert/strict';
import { retryAfterSeconds } from '../constants.ts';
import { keys } from '../layout.ts';
import {
  FenceRefusal,
  type PendingCommit,
  type Store,
  type StoreLimits,
  type VersionCheck,
  type Write,
} from '../store/contract.ts';
import { DelegatingStore } from '../store/delegating-store.ts';
import { shardOf } from './shards.ts';

/** What the fence asks of shard ownership. */
export interface Fence {
  /** The revision at which this instance took the shard; undefined when it does not hold it. */
  tokenOf(shard: number): number | undefined;
  /** etcd refused a commit fenced with `token`: the shard is no longer this instance's. */
  refused(shard: number, token: number): void;
}

/** Which layer refused a commit: this instance's own view, or etcd's compare on the owner key. */
export type FenceCheck = 'local' | 'etcd';

export class FencedStore extends DelegatingStore {
  private readonly fenceLimits: StoreLimits;
  private readonly fence: Fence;
  private readonly onRefused: (check: FenceCheck) => void;

  constructor(inner: Store, fence: Fence, onRefused: (check: FenceCheck) => void) {
    super(inner);
    this.fence = fence;
    this.onRefused = onRefused;
    // One check of each commit is the fence's.
    this.fenceLimits = { ...inner.limits, commitChecksMax: inner.limits.commitChecksMax - 1 };
  }

  override get limits(): StoreLimits {
    return this.fenceLimits;
  }

  override commit(checks: readonly VersionCheck[], writes: readonly Write[]): PendingCommit {
    const shard = shardWritten(writes);
    if (shard === undefined) return this.inner.commit(checks, writes);
    const token = this.fence.tokenOf(shard);
    if (token === undefined) {
      this.onRefused('local');
      return Promise.reject(new FenceRefusal(`this instance does not own shard ${shard}`, retryAfterSeconds));
    }
    const fenceKey = keys.shardOwner(shard);
    return this.inner.commit([...checks, { key: fenceKey, version: token }], writes).then(async (result) => {
      if (result.ok || !result.conflictKeys.includes(fenceKey)) return result;
      if (await this.stillHeld(fenceKey, token)) {
        return { ok: false, conflictKeys: result.conflictKeys.filter((key) => key !== fenceKey) };
      }
      this.fence.refused(shard, token);
      this.onRefused('etcd');
      throw new FenceRefusal(`shard ${shard} has another owner now`, retryAfterSeconds);
    });
  }

  /**
   * Whether the owner key is still at this holder's token. Asked before
   * letting a shard go, because a store that cannot tell which checks failed
   * names them all (the etcd store, when its read after the failed compare
   * fails too). If etcd cannot answer this either, the commit fails as a
   * store failure: nothing was applied, and the shard is kept.
   */
  private async stillHeld(fenceKey: string, token: number): Promise<boolean> {
    return (await this.inner.get(fenceKey))?.version === token;
  }
}

/** The shard of the SKU record a commit writes; undefined when it writes none. One SKU writer, one SKU. */
function shardWritten(writes: readonly Write[]): number | undefined {
  let shard: number | undefined;
  for (const write of writes) {
    if (!write.key.startsWith(keys.skuPrefix)) continue;
    const next = shardOf(write.key.slice(keys.skuPrefix.length));
    assert.ok(shard === undefined || shard === next, 'a commit writes the SKU records of two shards');
    shard = next;
  }
  return shard;
}
