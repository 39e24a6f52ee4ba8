// One writer per SKU. Requests for the SKU wait in its bounded queue; the
// writer takes a batch, reads what the batch needs in one snapshot, decides
// every operation against the SKU's warm state, and commits the whole batch as
// one conditional commit. Replies go out only after that commit is durable.
// While one batch commits, the next is decided on top of it (see `run`).
// A failed commit leaves the warm state untouched (the rollback), a version
// conflict reloads the SKU and decides the batch again.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  batchOpsMax,
  commitConflictBackoffMsMax,
  commitConflictRetriesMax,
  skuQueueDepthMax,
  userSkuOrdersScanMax,
  writeBytesMax,
} from '../constants.ts';
import { assertSkuInvariants } from '../domain/ledger.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import { keys, type UserOrderEntry } from '../layout.ts';
import type { Entry } from '../store/contract.ts';
import { type CommitResult, prefixEnd, type Store } from '../store/contract.ts';
import { costUpperBound, type DecideContext, type Decision, decide, readKeys } from './decide.ts';
import type { Operation, OperationResult } from './operations.ts';
import { rejected, storeRejection } from './operations.ts';
import { aheadVersion, WorkingSet } from './working-set.ts';

export interface WarmSku {
  record: SkuRecord;
  /** Store revision that last wrote the record. */
  version: number;
}

export interface WriterHooks {
  context(): DecideContext;
  /** Called after every durable commit that wrote something. */
  committed(skuId: string, batchSize: number, commitMs: number): void;
  /** Called for every decided operation, with the outcome it got. */
  decided(op: Operation, result: OperationResult): void;
  /** Called as operations are answered, so the engine can count the work it holds. */
  dequeued(count: number): void;
  storeFailed(error: unknown): void;
}

interface Queued {
  op: Operation;
  resolve: (result: OperationResult) => void;
  /** performance.now() when it was queued; the queue-wait bound looks at the oldest. */
  queuedAtMs: number;
  /** Commits of its batches that failed a version check so far. */
  conflicts: number;
  answered: boolean;
}

/** A batch read and decided, not yet handed to the store. */
interface Prepared {
  batch: Queued[];
  decisions: Decision[];
  ws: WorkingSet;
}

/** A batch handed to the store (or, writing nothing, needing no commit). */
interface InFlight extends Prepared {
  writes: boolean;
  /** Revision of the commit that landed just before this batch was issued, if it was layered on one. */
  aheadRevision: number | undefined;
  startedMs: number;
  /** The commit's result, or what the store threw. */
  outcome: Promise<CommitResult | { error: unknown }>;
}

/** The outcome of a batch that wrote nothing: it is answered once the batches ahead of it have landed. */
const noCommit: CommitResult = { ok: true, revision: 0 };

export class SkuWriter {
  readonly skuId: string;
  private warm: WarmSku | undefined;
  private readonly queue: Queued[] = [];
  private running = false;
  private idle: Promise<void> = Promise.resolve();
  private readonly store: Store;
  private readonly hooks: WriterHooks;

  constructor(skuId: string, warm: WarmSku | undefined, store: Store, hooks: WriterHooks) {
    this.skuId = skuId;
    this.warm = warm;
    this.store = store;
    this.hooks = hooks;
  }

  /** The SKU as last committed; undefined until it is created. */
  get state(): WarmSku | undefined {
    return this.warm;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /** Resolves once everything queued so far has been decided and answered. */
  drained(): Promise<void> {
    return this.idle;
  }

  /** Queues an operation; the caller has checked the queue bound with `hasRoom`. */
  submit(op: Operation): Promise<OperationResult> {
    assert.ok(this.queue.length < skuQueueDepthMax, 'submit past the queue bound');
    const result = new Promise<OperationResult>((resolve) =>
      this.queue.push({ op, resolve, queuedAtMs: performance.now(), conflicts: 0, answered: false }),
    );
    if (!this.running) {
      this.running = true;
      this.idle = this.run();
    }
    return result;
  }

  hasRoom(): boolean {
    return this.queue.length < skuQueueDepthMax;
  }

  /** How long the oldest waiting request has waited (0 when none waits). */
  oldestWaitMs(): number {
    const oldest = this.queue[0];
    return oldest === undefined ? 0 : performance.now() - oldest.queuedAtMs;
  }

  /**
   * The pipeline: while one batch commits, the next is read and decided on top
   * of its uncommitted state. When the commit lands, the next batch's commit
   * is handed to the store first and the landed batch is answered after, so
   * the store always has the next commit waiting and the replies overlap it.
   * Nothing is answered before its own commit (and every commit ahead of it)
   * is durable; if a commit fails or conflicts, the batch layered on it was
   * decided on state that never happened, and goes back to the queue.
   */
  private async run(): Promise<void> {
    let ahead: InFlight | undefined;
    let next: Prepared | undefined;
    try {
      while (this.queue.length > 0 || ahead !== undefined) {
        next = this.queue.length > 0 ? await this.prepare(ahead) : undefined;
        if (ahead === undefined) {
          ahead = next && this.issue(next, undefined);
        } else {
          ahead = await this.settle(ahead, next);
        }
        next = undefined;
      }
    } catch (error) {
      // A defect, not a store failure (those are answered above): no request may hang on it.
      // What was in flight has an unclear outcome, which 503 says; the queue is refused likewise.
      this.hooks.storeFailed(error);
      const held = [...(ahead?.batch ?? []), ...(next?.batch ?? []), ...this.queue.splice(0)];
      this.answerAll(
        held.filter((queued) => !queued.answered),
        rejected('store_unavailable', 'the batch could not be processed'),
      );
    } finally {
      this.running = false;
    }
  }

  /** Takes a batch from the queue and decides it on top of `ahead` (the batch committing now), if any. */
  private async prepare(ahead: InFlight | undefined): Promise<Prepared | undefined> {
    const batch = this.queue.splice(0, batchOpsMax);
    let ws: WorkingSet;
    try {
      ws = await this.snapshot(batch, ahead?.ws);
    } catch (error) {
      this.hooks.storeFailed(error);
      this.answerAll(batch, storeRejection(error, 'the store could not be read for this batch'));
      return undefined;
    }
    const ctx = this.hooks.context();
    const decisions: Decision[] = [];
    // A commit stays within the store's limits on checks and writes and, at writeBytesMax per write, on bytes.
    const { commitChecksMax, commitWritesMax, commitBytesMax } = this.store.limits;
    const writesMax = Math.min(commitWritesMax, Math.floor(commitBytesMax / writeBytesMax));
    for (const queued of batch) {
      const cost = costUpperBound(queued.op);
      const full = ws.writesCount() + cost.writes > writesMax || ws.checksCount() + cost.checks > commitChecksMax;
      if (decisions.length > 0 && full) break;
      decisions.push(decide(ws, this.skuId, queued.op, ctx));
    }
    // What did not fit one commit goes back to the head of the queue, in order.
    this.queue.unshift(...batch.slice(decisions.length));
    return { batch: batch.slice(0, decisions.length), decisions, ws };
  }

  /** Hands a decided batch to the store; a batch that writes nothing needs no commit. */
  private issue(prepared: Prepared, aheadRevision: number | undefined): InFlight {
    const writes = prepared.ws.writes();
    if (writes.length === 0) {
      return { ...prepared, writes: false, aheadRevision, startedMs: 0, outcome: Promise.resolve(noCommit) };
    }
    const startedMs = performance.now();
    const outcome = this.store.commit(prepared.ws.checks(aheadRevision), writes).then(
      (result) => result,
      (error: unknown) => ({ error }),
    );
    return { ...prepared, writes: true, aheadRevision, startedMs, outcome };
  }

  /**
   * Waits for the batch ahead to commit; then issues `next` and answers the
   * landed batch. Returns what is in flight afterwards.
   */
  private async settle(ahead: InFlight, next: Prepared | undefined): Promise<InFlight | undefined> {
    const outcome = await ahead.outcome;
    if ('error' in outcome) {
      // The warm state was never touched, so failing the batch is the whole rollback.
      this.hooks.storeFailed(outcome.error);
      this.answerAll(ahead.batch, storeRejection(outcome.error, 'the store could not commit this batch'));
      if (next) this.requeue(next.batch, false);
      return undefined;
    }
    if (!outcome.ok) {
      // Only the batch that reached the store spends a retry; the one layered on it goes back as it was.
      if (next) this.requeue(next.batch, false);
      this.requeue(ahead.batch, true);
      // Another instance committed this SKU: give it a moment (randomised, so two
      // instances do not keep colliding in step), then reload and decide again.
      await sleep(Math.random() * commitConflictBackoffMsMax);
      try {
        await this.reload();
      } catch (error) {
        // The stale state costs another conflict, which the retry bound counts.
        this.hooks.storeFailed(error);
      }
      return undefined;
    }
    if (ahead.writes) {
      this.adopt(ahead.ws, outcome.revision);
      this.hooks.committed(this.skuId, ahead.batch.length, performance.now() - ahead.startedMs);
    }
    const issued = next && this.issue(next, ahead.writes ? outcome.revision : undefined);
    for (const [i, queued] of ahead.batch.entries()) this.answer(queued, ahead.decisions[i]!, ahead, outcome.revision);
    return issued;
  }

  /**
   * Puts operations back at the head of the queue, in order, to be decided
   * again. After a conflict each has one retry fewer; past the bound it fails.
   */
  private requeue(batch: Queued[], conflicted: boolean): void {
    const retry: Queued[] = [];
    for (const queued of batch) {
      // A transition's order read before the batch may be what conflicted: read it afresh next time.
      if (conflicted && queued.op.kind === 'transition') queued.op = { ...queued.op, hint: undefined };
      if (conflicted && ++queued.conflicts > commitConflictRetriesMax) {
        this.answerAll(
          [queued],
          rejected('store_unavailable', `kept conflicting after ${commitConflictRetriesMax} retries`),
        );
      } else retry.push(queued);
    }
    this.queue.unshift(...retry);
  }

  /**
   * Reads everything the batch may need into a fresh working set, in one
   * round: keys the batch ahead wrote as it leaves them, the rest from the
   * store; then, where a per-user limit applies, the units each reserving
   * user holds.
   */
  private async snapshot(batch: Queued[], ahead: WorkingSet | undefined): Promise<WorkingSet> {
    const ws = new WorkingSet();
    const skuKey = keys.sku(this.skuId);
    const skuAhead = ahead?.written(skuKey);
    const warm = this.warm;
    if (skuAhead) ws.loadAhead(skuKey, skuAhead);
    else ws.load(skuKey, warm && { key: skuKey, value: warm.record, version: warm.version });
    const fromStore = new Set<string>();
    for (const { op } of batch) {
      // An order read to route the transition here may be older than the batch: its version is checked at commit.
      if (op.kind === 'transition' && op.hint !== undefined) this.loadKey(ws, op.hint.key, ahead, fromStore, op.hint);
      for (const key of readKeys(op)) this.loadKey(ws, key, ahead, fromStore);
    }
    if (fromStore.size > 0) {
      const wanted = [...fromStore];
      const entries = await this.store.getMany(wanted);
      for (const [i, key] of wanted.entries()) ws.load(key, entries[i]);
    }
    await this.loadHeld(ws, batch, ahead);
    return ws;
  }

  private loadKey(
    ws: WorkingSet,
    key: string,
    ahead: WorkingSet | undefined,
    fromStore: Set<string>,
    hint?: Entry<OrderRecord>,
  ): void {
    if (ws.has(key)) return;
    const written = ahead?.written(key);
    if (written) ws.loadAhead(key, written);
    else if (hint) {
      fromStore.delete(key);
      ws.load(key, hint, true);
    } else fromStore.add(key);
  }

  /**
   * The units each reserving user holds of this SKU, summed from their
   * entries (one short range each), when a per-user limit applies. Users the
   * batch ahead decided for take its figures, which include what it has not
   * committed yet.
   */
  private async loadHeld(ws: WorkingSet, batch: Queued[], ahead: WorkingSet | undefined): Promise<void> {
    const sku = ws.get<SkuRecord>(keys.sku(this.skuId));
    const limited = (sku !== undefined && sku.maxPerUser !== null) || batch.some(({ op }) => op.kind === 'upsert');
    if (!limited) return;
    const wanted = new Set<string>();
    const aheadHeld = ahead?.heldAfter();
    for (const { op } of batch) {
      if (op.kind !== 'reserve' || ws.heldUnits(op.userId) !== undefined) continue;
      const units = aheadHeld?.get(op.userId);
      if (units !== undefined) ws.loadHeld(op.userId, units);
      else wanted.add(op.userId);
    }
    if (wanted.size === 0) return;
    const users = [...wanted];
    const prefixes = users.map((userId) => keys.userSkuOrdersPrefix(userId, this.skuId));
    const ranges = await this.store.rangeMany<UserOrderEntry>(
      prefixes.map((prefix) => ({ start: prefix, end: prefixEnd(prefix), limit: userSkuOrdersScanMax + 1 })),
    );
    for (const [i, entries] of ranges.entries()) {
      if (entries.length > userSkuOrdersScanMax) continue; // left unloaded: the reservation is refused
      let units = 0;
      for (const entry of entries) {
        const written = ahead?.written(entry.key);
        units += ((written?.value as UserOrderEntry | undefined) ?? entry.value).units;
      }
      ws.loadHeld(users[i]!, units);
    }
  }

  /** Makes the committed working set the warm state. */
  private adopt(ws: WorkingSet, revision: number): void {
    if (!ws.writtenHere(keys.sku(this.skuId))) return;
    const record = ws.get<SkuRecord>(keys.sku(this.skuId));
    assert.ok(record !== undefined, `SKU ${this.skuId} was deleted by a batch`);
    assertSkuInvariants(record);
    this.observe(record, revision);
  }

  /** After a conflict another writer changed the SKU: read it again before re-deciding. */
  async reload(): Promise<void> {
    const entry = await this.store.get<SkuRecord>(keys.sku(this.skuId));
    this.warm = entry && { record: entry.value, version: entry.version };
  }

  /** Adopts a state if it is newer than the warm one: from this writer's commit or from the change feed. */
  observe(record: SkuRecord, version: number): void {
    if (this.warm === undefined || version > this.warm.version) this.warm = { record, version };
  }

  /** Answers with the version the decision named: its own commit's revision, the revision ahead, or a stored one. */
  private answer(queued: Queued, decision: Decision, landed: InFlight, revision: number): void {
    let version = decision.ok ? decision.version : 0;
    if (version === 'commit') version = revision;
    else if (version === aheadVersion) version = landed.aheadRevision ?? 0;
    const result: OperationResult = decision.ok
      ? { ok: true, status: decision.status, resource: decision.resource, version, replayed: decision.replayed }
      : decision;
    this.hooks.decided(queued.op, result);
    this.hooks.dequeued(1);
    queued.answered = true;
    queued.resolve(result);
  }

  private answerAll(batch: Queued[], result: OperationResult): void {
    for (const queued of batch) {
      this.hooks.decided(queued.op, result);
      queued.answered = true;
      queued.resolve(result);
    }
    this.hooks.dequeued(batch.length);
  }
}
