// One writer per SKU. Requests for the SKU wait in its bounded queue; the
// writer takes a batch, reads what the batch needs, decides every operation
// against the SKU's state, and commits the whole batch as one conditional
// commit. Replies go out only after that commit is durable.
//
// The pipeline: the next batch is decided on top of the batches still in
// flight (their writes, uncommitted, are what it reads) and handed to the
// store at once when the store numbers commits as it takes them (LMDB), so
// several commits of one SKU are in flight and share fsyncs; when the store
// says a commit's revision only once it lands (etcd), the next batch is
// decided meanwhile and handed over as soon as that happens. Batches land,
// and are answered, in order. A commit that fails or conflicts leaves the
// warm state untouched (the rollback); every batch layered on it was decided
// on state that never happened, so none of them applies (each commit checks
// the SKU record as the one before leaves it), and all go back to the queue:
// after a conflict the SKU is reloaded and they are decided again.
//
// A move to another store (cutover/moves.ts) fences the writer: it decides
// nothing new, lets its batches in flight land and answers them; requests
// keep queuing (within the queue bound). Once the move has switched the SKU's
// store, `rehome` points the writer at the new store with the SKU as read
// there, and the queue is decided against it; a move that did not happen
// lifts the fence with `unfence`. Time spent fenced does not count against
// the queue-wait bound: a move is the service's doing, not overload.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  batchOpsMax,
  commitConflictBackoffMsMax,
  commitConflictRetriesMax,
  pipelineBatchesMax,
  skuQueueDepthMax,
  writeBytesMax,
} from '../constants.ts';
import { assertSkuInvariants } from '../domain/ledger.ts';
import type { SkuRecord } from '../domain/types.ts';
import { keys } from '../layout.ts';
import type { CommitResult, Store } from '../store/contract.ts';
import { readBatch } from './batch-reads.ts';
import { costUpperBound, type DecideContext, type Decision, decide } from './decide.ts';
import type { Operation, OperationResult } from './operations.ts';
import { rejected, storeRejection } from './operations.ts';
import { aheadVersion, type WorkingSet } from './working-set.ts';

export interface WarmSku {
  record: SkuRecord;
  /** Store revision that last wrote the record. */
  version: number;
}

export interface WriterHooks {
  context(): DecideContext;
  /** Requests that have waited this long when their turn comes are answered 503 instead (0 = never). */
  readonly queueWaitBoundMs: number;
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

/** How a batch's commit settled: applied (or nothing to apply), refused by a check, or failed. */
type Settled = CommitResult | { error: unknown };

/** A batch read and decided. */
interface Decided {
  queued: Queued[];
  decisions: Decision[];
  ws: WorkingSet;
  writes: boolean;
  /**
   * The batch in flight whose revision the store had not said when this one
   * was read: what this one read of it carries a placeholder version, filled
   * in once it lands (this batch is issued only then).
   */
  layeredOn: Batch | undefined;
}

/** A batch launched: handed to the store, or waiting for the revision of the one ahead. */
interface Batch extends Decided {
  /** Its commit's revision, when the store said it at issue. */
  revision: number | undefined;
  /** Revision of the batch ahead it was issued after, when it waited for it (for placeholders). */
  aheadRevision: number | undefined;
  /** Waiting for the batch ahead to land before it can be issued. */
  waiting: boolean;
  startedMs: number;
  /** How its commit settles; batches are answered in order all the same. */
  done: Promise<Settled>;
  settled: Settled | undefined;
}

/** A move holds the SKU: since when (performance.now()), and who waits for its batches in flight to land. */
interface Fence {
  sinceMs: number;
  quietWaiters: (() => void)[];
}

/** The outcome of a batch that wrote nothing: it is answered once the batches ahead of it have landed. */
const noCommit: CommitResult = { ok: true, revision: 0 };
/** The outcome of a batch layered on a commit that did not apply: decided on state that never happened, never issued. */
const layeredOnFailure: CommitResult = { ok: false, conflictKeys: [] };

export class SkuWriter {
  readonly skuId: string;
  private warm: WarmSku | undefined;
  private readonly queue: Queued[] = [];
  /** Batches launched and not yet answered, oldest first. */
  private readonly inflight: Batch[] = [];
  private deciding = false;
  private decideScheduled = false;
  /** After a failed or conflicting commit: the batches layered on it, collected until all have settled. */
  private recovering: { queued: Queued[]; conflicted: boolean } | undefined;
  private idleWaiters: (() => void)[] = [];
  private fenced: Fence | undefined;
  /** The SKU's authoritative store; a move changes it (rehome). */
  private store: Store;
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
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.quiet();
  }

  private notifyIdle(): void {
    if (this.fenced !== undefined && this.quiet()) for (const resolve of this.fenced.quietWaiters.splice(0)) resolve();
    if (!this.idle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Nothing decided is in flight: what is left waits in the queue. */
  private quiet(): boolean {
    return this.inflight.length === 0 && !this.deciding && this.recovering === undefined;
  }

  /** Stops deciding; resolves once every batch in flight has landed and been answered. */
  fence(): Promise<void> {
    assert.ok(this.fenced === undefined, `SKU ${this.skuId} is fenced twice`);
    const fenced: Fence = { sinceMs: performance.now(), quietWaiters: [] };
    this.fenced = fenced;
    if (this.quiet()) return Promise.resolve();
    return new Promise((resolve) => fenced.quietWaiters.push(resolve));
  }

  /** Lifts the fence; the SKU stays on its store. */
  unfence(): void {
    const fenced = this.fenced;
    assert.ok(fenced !== undefined, `SKU ${this.skuId} is not fenced`);
    this.fenced = undefined;
    // The wait behind the fence is not the queue's: what each request waited while fenced is taken off.
    const nowMs = performance.now();
    for (const queued of this.queue) queued.queuedAtMs += nowMs - Math.max(queued.queuedAtMs, fenced.sinceMs);
    if (this.canDecide()) this.scheduleDecide();
    this.notifyIdle();
  }

  /** Lifts the fence of a SKU that moved: commits go to `store`, starting from the SKU as read there. */
  rehome(store: Store, warm: WarmSku | undefined): void {
    assert.ok(this.fenced !== undefined && this.quiet(), `SKU ${this.skuId} moves only fenced and quiet`);
    this.store = store;
    // Versions are the new store's revisions, which may be lower than the old store's: replaced, not compared.
    this.warm = warm;
    this.unfence();
  }

  /** Queues an operation; the caller has checked the queue bound with `hasRoom`. */
  submit(op: Operation): Promise<OperationResult> {
    assert.ok(this.queue.length < skuQueueDepthMax, 'submit past the queue bound');
    const result = new Promise<OperationResult>((resolve) =>
      this.queue.push({ op, resolve, queuedAtMs: performance.now(), conflicts: 0, answered: false }),
    );
    this.scheduleDecide();
    return result;
  }

  hasRoom(): boolean {
    return this.queue.length < skuQueueDepthMax;
  }

  /**
   * How long the oldest request not yet handed to the store has waited (0
   * when none waits, and while a move holds the SKU): in the queue, or
   * decided and waiting for the commit ahead of its batch.
   */
  oldestWaitMs(): number {
    if (this.fenced !== undefined) return 0;
    const waiting = this.inflight.find((batch) => batch.waiting)?.queued[0] ?? this.queue[0];
    return waiting === undefined ? 0 : performance.now() - waiting.queuedAtMs;
  }

  /**
   * Decides the next batch soon: after the I/O of this loop turn, so requests
   * that arrived together are decided together.
   */
  private scheduleDecide(): void {
    if (this.decideScheduled) return;
    this.decideScheduled = true;
    setImmediate(() => {
      this.decideScheduled = false;
      void this.decideNext();
    });
  }

  /** Whether a batch can be decided now on top of what is in flight. */
  private canDecide(): boolean {
    return (
      this.fenced === undefined &&
      !this.deciding &&
      this.recovering === undefined &&
      this.queue.length > 0 &&
      this.inflight.length < pipelineBatchesMax &&
      !this.inflight.some((batch) => batch.waiting) &&
      // A catalog change waits for the batches ahead (see take).
      !(this.queue[0]!.op.kind === 'upsert' && this.inflight.length > 0)
    );
  }

  private async decideNext(): Promise<void> {
    if (!this.canDecide()) return;
    this.deciding = true;
    try {
      const batch = await this.prepare();
      // A commit ahead failed while this batch was read: it was decided on state that never happened.
      if (batch !== undefined && this.recovering !== undefined) this.queue.unshift(...batch.queued);
      else if (batch !== undefined) this.launch(batch);
    } catch (error) {
      this.defect(error);
    } finally {
      this.deciding = false;
    }
    if (this.canDecide()) this.scheduleDecide();
    this.notifyIdle();
  }

  /**
   * Takes the next batch from the queue. A catalog change (upsert) is decided
   * alone, with nothing in flight: it may set a per-user limit that batches
   * ahead did not count units for.
   */
  private take(): Queued[] {
    this.shedLate();
    const batch = this.queue.splice(0, batchOpsMax);
    const upsertAt = batch.findIndex((queued) => queued.op.kind === 'upsert');
    const end = upsertAt === -1 ? batch.length : upsertAt === 0 ? 1 : upsertAt;
    this.queue.unshift(...batch.slice(end));
    return batch.slice(0, end);
  }

  /**
   * Answers 503 `overloaded` to the requests at the head of the queue that
   * have waited past the bound: they could no longer be served in time, and
   * deciding them would only make every request behind them later still.
   */
  private shedLate(): void {
    const bound = this.hooks.queueWaitBoundMs;
    if (bound <= 0) return;
    const nowMs = performance.now();
    let late = 0;
    while (late < this.queue.length && nowMs - this.queue[late]!.queuedAtMs > bound) late++;
    if (late > 0) {
      this.answerAll(this.queue.splice(0, late), rejected('overloaded', 'waited too long for its turn; retry shortly'));
    }
  }

  /** Reads and decides the next batch on top of the batches in flight. */
  private async prepare(): Promise<Decided | undefined> {
    const layeredOn = this.inflight.findLast((ahead) => ahead.writes && ahead.revision === undefined);
    const batch = this.take();
    if (batch.length === 0) return undefined; // every request waiting was too late, and has been answered
    let ws: WorkingSet;
    try {
      ws = await readBatch(
        this.store,
        this.skuId,
        this.warm,
        batch.map((queued) => queued.op),
        this.inflight,
      );
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
    const writes = ws.writesCount() > 0;
    // Every commit checks the SKU record, so a batch layered on one that did not apply cannot apply either.
    assert.ok(!writes || ws.isGuarded(keys.sku(this.skuId)), 'a batch that writes checks the SKU record');
    return { queued: batch.slice(0, decisions.length), decisions, ws, writes, layeredOn };
  }

  /** Hands a decided batch to the store, or to the wait for the batch ahead whose revision its checks need. */
  private launch(decided: Decided): void {
    const batch: Batch = {
      ...decided,
      revision: undefined,
      aheadRevision: undefined,
      waiting: false,
      startedMs: 0,
      done: Promise.resolve(noCommit),
      settled: undefined,
    };
    // It may have landed (and left the pipeline) while this batch was read.
    const unknown = decided.layeredOn;
    this.inflight.push(batch);
    if (!batch.writes) {
      // Nothing to commit: answered once the batches ahead of it have landed.
    } else if (unknown === undefined) {
      batch.done = this.issue(batch, undefined);
    } else if (unknown.settled !== undefined) {
      const revision = revisionOf(unknown.settled);
      batch.done = revision === undefined ? Promise.resolve(layeredOnFailure) : this.issue(batch, revision);
    } else {
      batch.waiting = true;
      batch.done = unknown.done.then((settled): Settled | Promise<Settled> => {
        batch.waiting = false;
        const revision = revisionOf(settled);
        return revision === undefined ? layeredOnFailure : this.issue(batch, revision);
      });
    }
    void batch.done.then((settled) => {
      batch.settled = settled;
      this.settleHead();
    });
  }

  private issue(batch: Batch, aheadRevision: number | undefined): Promise<Settled> {
    batch.aheadRevision = aheadRevision;
    batch.startedMs = performance.now();
    const pending = this.store.commit(batch.ws.checks(aheadRevision), batch.ws.writes());
    batch.revision = pending.revision;
    return pending.then(
      (result) => result,
      (error: unknown) => ({ error }),
    );
  }

  /** Answers (or sends back) every batch at the head of the pipeline that has settled, in order. */
  private settleHead(): void {
    try {
      while (this.inflight[0]?.settled !== undefined) {
        // Shifted only once landed: a defect while landing leaves it for defect() to answer.
        this.land(this.inflight[0]);
        this.inflight.shift();
      }
    } catch (error) {
      this.defect(error);
    }
    if (this.recovering !== undefined && this.inflight.length === 0) void this.recover();
    if (this.canDecide()) this.scheduleDecide();
    this.notifyIdle();
  }

  private land(batch: Batch): void {
    const settled = batch.settled!;
    if (this.recovering !== undefined) {
      // Layered on a commit that did not apply: its own commit's checks cannot have held.
      assert.ok('error' in settled || !settled.ok || !batch.writes, 'a batch layered on a failed commit applied');
      this.recovering.queued.push(...batch.queued);
      return;
    }
    if ('error' in settled) {
      // The warm state was never touched, so failing the batch is the whole rollback.
      this.hooks.storeFailed(settled.error);
      this.answerAll(batch.queued, storeRejection(settled.error, 'the store could not commit this batch'));
      this.recovering = { queued: [], conflicted: false };
      return;
    }
    if (!settled.ok) {
      this.recovering = { queued: [...this.counted(batch.queued)], conflicted: true };
      return;
    }
    if (batch.writes) {
      this.adopt(batch.ws, settled.revision);
      this.hooks.committed(this.skuId, batch.queued.length, performance.now() - batch.startedMs);
    }
    for (const [i, queued] of batch.queued.entries()) this.answer(queued, batch.decisions[i]!, batch, settled.revision);
  }

  /** Operations of a batch that conflicted, each with one retry fewer; past the bound they fail. */
  private *counted(batch: Queued[]): Generator<Queued> {
    for (const queued of batch) {
      if (++queued.conflicts <= commitConflictRetriesMax) yield queued;
      else
        this.answerAll(
          [queued],
          rejected('store_unavailable', `kept conflicting after ${commitConflictRetriesMax} retries`),
        );
    }
  }

  /**
   * Everything after a failed or conflicting commit has settled: its
   * operations go back to the head of the queue, in order. After a conflict
   * another writer changed the SKU: give it a moment (randomised, so two
   * instances do not keep colliding in step), reload, and decide again.
   */
  private async recover(): Promise<void> {
    const { queued, conflicted } = this.recovering!;
    this.queue.unshift(...queued.map((item) => dropHint(item)));
    if (conflicted) {
      await sleep(Math.random() * commitConflictBackoffMsMax);
      try {
        await this.reload();
      } catch (error) {
        // The stale state costs another conflict, which the retry bound counts.
        this.hooks.storeFailed(error);
      }
    }
    this.recovering = undefined;
    if (this.canDecide()) this.scheduleDecide();
    this.notifyIdle();
  }

  /**
   * A defect, not a store failure (those are answered above): no request may
   * hang on it. What was in flight has an unclear outcome, which 503 says;
   * the queue is refused likewise, and the SKU is read again.
   */
  private defect(error: unknown): void {
    this.hooks.storeFailed(error);
    const held = [
      ...this.inflight.splice(0).flatMap((batch) => batch.queued),
      ...(this.recovering?.queued ?? []),
      ...this.queue.splice(0),
    ];
    this.recovering = undefined;
    this.answerAll(held, rejected('store_unavailable', 'the batch could not be processed'));
    void this.reload().catch(() => undefined);
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
  private answer(queued: Queued, decision: Decision, landed: Batch, revision: number): void {
    let version = decision.ok ? decision.version : 0;
    if (version === 'commit') version = revision;
    else if (version === aheadVersion) version = landed.aheadRevision ?? 0;
    const result: OperationResult = decision.ok
      ? { ok: true, status: decision.status, resource: decision.resource, version, replayed: decision.replayed }
      : decision;
    this.settle(queued, result);
  }

  private answerAll(batch: Queued[], result: OperationResult): void {
    for (const queued of batch) this.settle(queued, result);
  }

  private settle(queued: Queued, result: OperationResult): void {
    if (queued.answered) return;
    queued.answered = true;
    this.hooks.decided(queued.op, result);
    this.hooks.dequeued(1);
    queued.resolve(result);
  }
}

/** The revision a settled commit applied at; undefined when it did not apply. */
function revisionOf(settled: Settled): number | undefined {
  return 'error' in settled || !settled.ok ? undefined : settled.revision;
}

/** A transition's order read before the batch may be what conflicted: read it afresh next time. */
function dropHint(queued: Queued): Queued {
  if (queued.op.kind === 'transition' && queued.op.hint !== undefined) queued.op = { ...queued.op, hint: undefined };
  return queued;
}
