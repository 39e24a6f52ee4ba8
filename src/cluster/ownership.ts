// Shard ownership: which SKUs this instance may write, kept in etcd so that
// at any moment at most one instance holds each shard.
//
// Protocol (ARCHITECTURE.md, "Ownership protocol"): an instance grants
// itself a lease and puts its member key under it. Every instance watches the
// members (the store's change feed) and computes the same owner of every
// shard from them (shards.ts). An instance takes a shard it should own once the
// shard's owner key is absent (a conditional put under its lease: the put's
// revision is its fence token) and serves it once its warm state has caught
// up with that revision, so it holds every commit of the previous owner. An
// instance that should no longer own a shard stops admitting its writes,
// lets the batches in flight land, then deletes the owner key. A dead
// instance's lease lapses and etcd deletes its keys, which frees its shards.
// Every commit carries the fence (fenced-store.ts), so an instance that
// still believes it owns a shard it lost cannot write.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import {
  clusterFeedBufferChangesMax,
  clusterHandOverDrainMsMax,
  clusterOwnerWaitMs,
  clusterRetryBackoffMsMax,
  clusterRetryBackoffMsMin,
  clusterShardCallsConcurrency,
  clusterShardsCount,
} from '../constants.ts';
import { keys } from '../layout.ts';
import type { CommittedChange, Store } from '../store/contract.ts';
import type { Fence } from './fenced-store.ts';
import type { ClusterRegistry } from './registry.ts';
import { assignShards } from './shards.ts';
import { ClusterView } from './view.ts';

/** A held shard: taken and catching up with its take, serving, or letting its batches land before it goes. */
export type LocalState = 'loading' | 'owned' | 'releasing';

interface Held {
  token: number;
  state: LocalState;
}

/** Where a shard's writes go: here, or to a peer. */
export type Owner = { self: true } | { self: false; id: string; url: string };
const self: Owner = { self: true };

export interface OwnershipObserver {
  handedOver(direction: 'acquired' | 'released', shards: number): void;
}

export interface OwnershipOptions {
  memberId: string;
  registry: ClusterRegistry;
  /** The store whose change feed carries the cluster's keys (followed under `cluster/` only). */
  feed: Store;
  /** Lets the writers of the SKUs in these shards answer everything they hold. */
  drain(shards: ReadonlySet<number>): Promise<void>;
  /**
   * Resolves once the warm state holds every SKU commit made before
   * `revision` (the latest fence token of the shards just taken), so every
   * commit of their previous owners. The change feed that follows the SKU
   * records is not ordered against the one that follows the cluster's keys,
   * so this is asked of the engine, not read from the cluster's feed.
   */
  catchUp(revision: number): Promise<void>;
  log: Logger;
  observer: OwnershipObserver;
}

/** Runs `task` over `items`, at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class Ownership implements Fence {
  readonly memberId: string;
  private readonly options: OwnershipOptions;
  private readonly view: ClusterView;
  private readonly held = new Map<number, Held>();
  private lease: { lease: Lease; id: string } | undefined;
  /** True while the lease is lost and not granted again: etcd is unreachable, so nobody waits for an owner. */
  private withoutLease = false;
  private url: string | undefined;
  private leaving = false;
  private stopped = false;
  private readonly waiters = new Set<() => void>();
  private reconciling = false;
  private again = false;
  private unsubscribe: () => void = () => {};

  constructor(options: OwnershipOptions) {
    this.options = options;
    this.memberId = options.memberId;
    this.view = new ClusterView((key, problem) =>
      options.log.warn({ key, problem }, 'ignoring a cluster key hotstock did not write'),
    );
  }

  /**
   * Follows the cluster's keys: the change feed first, then a snapshot, so
   * no change falls between. While the snapshot is read the feed's cluster
   * changes wait (at most `clusterFeedBufferChangesMax`; past it, read again).
   */
  async start(): Promise<void> {
    let buffered: CommittedChange[] | undefined = [];
    this.unsubscribe = this.options.feed.subscribe(
      keys.clusterPrefix,
      (change) => {
        if (buffered === undefined) this.onChange(change);
        else buffered.push(change);
      },
      () => void this.onGap(),
    );
    do {
      buffered = [];
      await this.loadSnapshot();
    } while (buffered.length > clusterFeedBufferChangesMax);
    const early = buffered;
    buffered = undefined;
    for (const change of early) this.onChange(change);
  }

  private async loadSnapshot(): Promise<void> {
    const snapshot = await this.options.registry.snapshot();
    if (!snapshot.complete) this.options.log.warn('more keys under cluster/ than hotstock writes; some were not read');
    this.view.load(snapshot.entries, snapshot.revision);
  }

  private onChange(change: CommittedChange): void {
    if (!this.view.apply(change)) return;
    this.schedule();
    this.notify();
  }

  /** The feed lost changes (etcd compacted them): read the cluster's keys again. */
  private async onGap(): Promise<void> {
    await this.retrying('could not read the cluster after a change-feed gap', async () => {
      await this.loadSnapshot();
      this.schedule();
      this.notify();
    });
  }

  /** Runs `attempt` until it succeeds (or the instance stops or leaves), backing off between failures. */
  private async retrying(what: string, attempt: () => Promise<void>): Promise<void> {
    let backoffMs = clusterRetryBackoffMsMin;
    while (!this.stopped) {
      try {
        await attempt();
        return;
      } catch (error) {
        this.options.log.warn({ err: error }, `${what}; retrying`);
        await sleep(backoffMs);
        backoffMs = Math.min(2 * backoffMs, clusterRetryBackoffMsMax);
      }
    }
  }

  /**
   * Announces this instance at `url` under a new lease, then takes its share
   * of the shards; resolves once the first hand-overs are done (bounded), so
   * the instance is ready with the shards it should serve.
   */
  async join(url: string): Promise<void> {
    this.url = url;
    await this.register();
    this.schedule();
    const deadlineMs = performance.now() + clusterOwnerWaitMs;
    while (this.unsettled() && performance.now() < deadlineMs) await this.changed(deadlineMs - performance.now());
  }

  /** Hand-overs under way: a reconcile running, or a shard taken and not serving yet. */
  private unsettled(): boolean {
    return this.reconciling || [...this.held.values()].some((held) => held.state === 'loading');
  }

  private async register(): Promise<void> {
    const lease = await this.options.registry.grantLease((lost, error) => this.leaseLost(lost, error));
    try {
      const member = { id: this.memberId, url: this.url!, shards: clusterShardsCount };
      await this.options.registry.putMember(member, lease.id);
    } catch (error) {
      // A lease nobody uses must not be kept alive (nor keep a member key that says this instance is there).
      await this.endLease(lease);
      throw error;
    }
    if (this.stopped || lease.lease.revoked()) {
      lease.lease.release();
      throw new Error('the cluster lease ended before this instance could use it');
    }
    this.lease = lease;
    this.withoutLease = false;
  }

  /**
   * etcd expired the lease, or keepalives failed for twice its TTL: every
   * shard may have a new owner by now. Drop them all at once (the fence
   * refuses whatever is still in flight), then register again.
   */
  private leaseLost(lease: Lease, error: Error): void {
    if (this.lease?.lease !== lease) return;
    const lostId = this.lease.id;
    this.lease = undefined;
    this.withoutLease = true;
    this.options.log.warn({ err: error, shards: this.held.size }, 'cluster lease lost: this instance owns no shard');
    this.held.clear();
    this.notify();
    void this.rejoin(lostId);
  }

  private async rejoin(lostLeaseId: string): Promise<void> {
    await this.retrying('could not register with the cluster', async () => {
      if (!this.leaving && this.lease === undefined) await this.register();
    });
    if (this.lease === undefined) return;
    // Keys a lost lease still holds (etcd may have kept it alive) would keep its shards from their next owner;
    // if etcd cannot revoke it now, they go when it lapses.
    await this.options.registry.revokeLease(lostLeaseId).catch(() => undefined);
    this.options.log.info('cluster lease granted again; taking shards back');
    this.schedule();
  }

  /** True while this instance holds a lease: it may own shards, and etcd answers it. */
  get connected(): boolean {
    return this.lease !== undefined;
  }

  /** True once a lease was lost and no new one could be granted yet: etcd is unreachable from here. */
  get disconnected(): boolean {
    return this.withoutLease;
  }

  // ---- reconciling held shards with the desired ones ------------------------

  /** Reconciles soon; changes that arrive meanwhile are reconciled right after. */
  private schedule(): void {
    if (this.stopped) return;
    if (this.reconciling) {
      this.again = true;
      return;
    }
    this.reconciling = true;
    void this.reconcileLoop();
  }

  private async reconcileLoop(): Promise<void> {
    do {
      this.again = false;
      await this.retrying('shard hand-over failed', () => this.reconcile());
    } while (this.again && !this.stopped);
    this.reconciling = false;
    this.notify();
  }

  private memberIds(): string[] {
    const ids = [...this.view.members.keys()];
    return this.leaving ? ids.filter((id) => id !== this.memberId) : ids;
  }

  private async reconcile(): Promise<void> {
    const owners = assignShards(this.memberIds());
    const release = new Set([...this.held.keys()].filter((shard) => owners[shard] !== this.memberId));
    const acquire: number[] = [];
    // Others must see this member before it takes shards, or they would compute other owners.
    if (this.lease !== undefined && !this.leaving && this.view.members.has(this.memberId)) {
      for (let shard = 0; shard < clusterShardsCount; shard++) {
        if (this.held.has(shard) || this.view.shards.has(shard)) continue;
        if (owners[shard] === this.memberId) acquire.push(shard);
      }
    }
    await Promise.all([this.release(release), this.acquire(acquire, this.lease), this.dropOrphans()]);
  }

  /**
   * Owner keys that name this instance but that it does not hold: left under
   * a lease it lost, or kept after a refusal that named the fence key
   * without cause. Nobody else would ever take their shards, so they go.
   */
  private async dropOrphans(): Promise<void> {
    const orphans = [...this.view.shards].filter(
      ([shard, { owner }]) => owner === this.memberId && !this.held.has(shard),
    );
    await eachLimited(orphans, clusterShardCallsConcurrency, ([shard, { revision }]) =>
      this.options.registry.release(shard, revision),
    );
  }

  private async acquire(shards: readonly number[], lease: { id: string } | undefined): Promise<void> {
    if (shards.length === 0 || lease === undefined) return;
    const taken = new Map<number, Held>();
    await eachLimited(shards, clusterShardCallsConcurrency, async (shard) => {
      const token = await this.options.registry.acquire(shard, this.memberId, lease.id);
      // Another instance holds it (the view will say who), or the lease was lost meanwhile (the key went with it).
      if (token === undefined || this.lease?.id !== lease.id) return;
      const held: Held = { token, state: 'loading' };
      this.held.set(shard, held);
      taken.set(shard, held);
    });
    if (taken.size === 0) return;
    this.options.observer.handedOver('acquired', taken.size);
    this.notify();
    await this.serveOnceCaughtUp(taken);
  }

  /**
   * Serves shards just taken once the warm state has caught up with their
   * take (tried again until it has, or the shards are gone: a lost lease, a
   * refusal, a stop).
   */
  private async serveOnceCaughtUp(taken: ReadonlyMap<number, Held>): Promise<void> {
    const stillTaken = () => [...taken].filter(([shard, held]) => this.held.get(shard) === held);
    await this.retrying('could not catch up with the shards taken', async () => {
      const tokens = stillTaken().map(([, held]) => held.token);
      if (tokens.length > 0) await this.options.catchUp(Math.max(...tokens));
    });
    for (const [, held] of stillTaken()) if (held.state === 'loading') held.state = 'owned';
    this.notify();
  }

  /** Stops admitting the shards' writes, lets what is in flight land (bounded), then deletes their owner keys. */
  private async release(shards: ReadonlySet<number>): Promise<void> {
    if (shards.size === 0) return;
    for (const shard of shards) this.held.get(shard)!.state = 'releasing';
    this.notify();
    const bound = new AbortController();
    await Promise.race([
      this.options.drain(shards),
      sleep(clusterHandOverDrainMsMax, undefined, { signal: bound.signal }).catch(() => undefined),
    ]);
    bound.abort();
    await eachLimited([...shards], clusterShardCallsConcurrency, async (shard) => {
      const held = this.held.get(shard);
      if (held === undefined) return; // the lease was lost meanwhile
      await this.options.registry.release(shard, held.token);
      if (this.held.get(shard) === held) this.held.delete(shard);
    });
    this.options.observer.handedOver('released', shards.size);
    this.notify();
  }

  // ---- what the router and the fence ask -------------------------------------

  /** Where the shard's writes go now; undefined while it has no owner that can take them. */
  ownerOf(shard: number): Owner | undefined {
    const held = this.held.get(shard);
    if (held !== undefined) return held.state === 'owned' ? self : undefined;
    const record = this.view.shards.get(shard);
    if (record === undefined || record.owner === this.memberId) return undefined;
    const member = this.view.members.get(record.owner);
    return member && { self: false, id: member.id, url: member.url };
  }

  /**
   * The shard's owner, once it has one; undefined past `deadlineMs`
   * (performance.now()), or at once while the lease is lost (no owner can be
   * learned then). Before this instance has joined, it waits like anyone.
   */
  async awaitOwner(shard: number, deadlineMs: number): Promise<Owner | undefined> {
    for (;;) {
      if (this.disconnected) return undefined;
      const owner = this.ownerOf(shard);
      if (owner !== undefined) return owner;
      const remainingMs = deadlineMs - performance.now();
      if (remainingMs <= 0) return undefined;
      await this.changed(remainingMs);
    }
  }

  /**
   * This instance's hold on the shard, once it is past taking it (or past
   * `deadlineMs`). Peers may see the owner key before this instance has read
   * etcd's answer to its own put, so a key naming this instance counts as
   * being taken too.
   */
  async awaitLocal(shard: number, deadlineMs: number): Promise<LocalState | undefined> {
    for (;;) {
      const state = this.held.get(shard)?.state;
      const taking =
        state === 'loading' || (state === undefined && this.view.shards.get(shard)?.owner === this.memberId);
      const remainingMs = deadlineMs - performance.now();
      if (!taking || remainingMs <= 0) return state;
      await this.changed(remainingMs);
    }
  }

  /** Resolves at the next change of the view or of a held shard, or at `deadlineMs` at the latest. */
  async awaitChange(deadlineMs: number): Promise<void> {
    const remainingMs = deadlineMs - performance.now();
    if (remainingMs > 0) await this.changed(remainingMs);
  }

  /** Resolves at the next change of the view or of a held shard, or after `timeoutMs`. */
  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  private notify(): void {
    for (const done of [...this.waiters]) done();
  }

  tokenOf(shard: number): number | undefined {
    return this.held.get(shard)?.token;
  }

  /** etcd refused a commit carrying `token`: the shard has another holder now. */
  refused(shard: number, token: number): void {
    if (this.held.get(shard)?.token !== token) return;
    this.held.delete(shard);
    this.notify();
    this.schedule();
  }

  // ---- leaving -------------------------------------------------------------------

  /**
   * Leaves the cluster without a gap: the member key goes first, so the
   * others compute owners without this instance; every shard is then handed
   * over (its batches land first); the lease goes last. Bounded by `signal`.
   */
  async leave(signal: AbortSignal): Promise<void> {
    this.leaving = true;
    try {
      await this.options.registry.deleteMember(this.memberId);
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not remove this member; its lease will lapse');
    }
    this.schedule();
    while (this.held.size > 0 && !signal.aborted) await this.changed(clusterRetryBackoffMsMax);
    const lease = this.lease;
    this.close();
    if (lease !== undefined) await this.endLease(lease);
  }

  /** Stops a lease's keepalives and revokes it (with a deadline; a lease etcd cannot revoke lapses). */
  private async endLease(lease: { lease: Lease; id: string }): Promise<void> {
    lease.lease.release();
    await this.options.registry.revokeLease(lease.id).catch(() => undefined);
  }

  /** Stops following the cluster and keeping the lease alive (it lapses if not revoked). */
  close(): void {
    this.stopped = true;
    this.unsubscribe();
    this.lease?.lease.release();
    this.lease = undefined;
    this.held.clear();
    this.notify();
  }

  /** Ids of the members this instance sees. */
  liveMembers(): ReadonlySet<string> {
    return new Set(this.view.members.keys());
  }

  figures(): { members: number; shardsServing: number } {
    let serving = 0;
    for (const held of this.held.values()) if (held.state === 'owned') serving++;
    return { members: this.view.members.size, shardsServing: serving };
  }

  status(): Record<string, unknown> {
    const owners: Record<string, number> = {};
    for (const { owner } of this.view.shards.values()) owners[owner] = (owners[owner] ?? 0) + 1;
    return {
      memberId: this.memberId,
      url: this.url ?? null,
      connected: this.connected,
      members: [...this.view.members.values()].map(({ id, url }) => ({ id, url })),
      shards: clusterShardsCount,
      shardsHeld: this.held.size,
      shardsServing: this.figures().shardsServing,
      shardOwners: owners,
    };
  }
}
