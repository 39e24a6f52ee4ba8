// One writer per SKU. Requests for the SKU wait in its bounded queue; the
// writer takes a batch, reads what the batch needs in one snapshot, decides
// every operation against the SKU's warm state, and commits the whole batch as
// one conditional commit. Replies go out only after that commit is durable.
// A failed commit leaves the warm state untouched (the rollback), a version
// conflict reloads the SKU and decides the batch again.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { batchOpsMax, commitConflictBackoffMsMax, commitConflictRetriesMax, skuQueueDepthMax } from '../constants.ts';
import { assertSkuInvariants } from '../domain/ledger.ts';
import type { SkuRecord } from '../domain/types.ts';
import { type Store, StoreFailure } from '../store/contract.ts';
import { keys } from '../store/keys.ts';
import { type DecideContext, type Decision, decide, firstReadKeys, opsUpperBound, secondReadKeys } from './decide.ts';
import type { Operation, OperationResult } from './operations.ts';
import { rejected } from './operations.ts';
import { WorkingSet } from './working-set.ts';

export interface WarmSku {
  record: SkuRecord;
  /** Store revision that last wrote the record. */
  version: number;
}

export interface WriterHooks {
  context(): DecideContext;
  /** Called after every durable commit, with the SKU's new state. */
  committed(sku: WarmSku, revision: number, batchSize: number, commitMs: number): void;
  /** Called for every decided operation, with the outcome it got. */
  decided(op: Operation, result: OperationResult): void;
  /** Called when the writer's queue drains, so the engine can count queued work. */
  dequeued(count: number): void;
  storeFailed(error: unknown): void;
}

/** A store failure's answer: its own code when the store gave one (breaker open, out of space). */
function storeFailed(error: unknown): OperationResult {
  if (error instanceof StoreFailure) return rejected(error.code, error.message);
  return rejected('store_unavailable', 'the store could not commit this batch');
}

interface Queued {
  op: Operation;
  resolve: (result: OperationResult) => void;
}

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
    const result = new Promise<OperationResult>((resolve) => this.queue.push({ op, resolve }));
    if (!this.running) {
      this.running = true;
      this.idle = this.run();
    }
    return result;
  }

  hasRoom(): boolean {
    return this.queue.length < skuQueueDepthMax;
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, batchOpsMax);
        const deferred = await this.process(batch);
        this.queue.unshift(...deferred);
        this.hooks.dequeued(batch.length - deferred.length);
      }
    } finally {
      this.running = false;
    }
  }

  /** Decides and commits a batch; returns the tail that did not fit one commit. */
  private async process(batch: Queued[]): Promise<Queued[]> {
    for (let attempt = 0; attempt <= commitConflictRetriesMax; attempt++) {
      let outcome: Awaited<ReturnType<SkuWriter['attempt']>>;
      try {
        outcome = await this.attempt(batch);
      } catch (error) {
        // The warm state was never touched, so failing the batch is the whole rollback.
        this.hooks.storeFailed(error);
        this.answerAll(batch, storeFailed(error));
        return [];
      }
      if (outcome.conflict) {
        // Another instance committed this SKU: give it a moment (randomised, so two
        // instances do not keep colliding in step), then reload and re-decide.
        await sleep(Math.random() * commitConflictBackoffMsMax);
        try {
          await this.reload();
        } catch (error) {
          this.hooks.storeFailed(error);
          this.answerAll(batch, storeFailed(error));
          return [];
        }
        continue;
      }
      return outcome.deferred;
    }
    this.answerAll(
      batch,
      rejected('store_unavailable', `batch kept conflicting after ${commitConflictRetriesMax} retries`),
    );
    return [];
  }

  private async attempt(batch: Queued[]): Promise<{ conflict: boolean; deferred: Queued[] }> {
    const ws = await this.snapshot(batch);
    const ctx = this.hooks.context();
    const decisions: Decision[] = [];
    const opsMax = this.store.limits.commitOpsMax;
    for (const queued of batch) {
      if (decisions.length > 0 && ws.opCount() + opsUpperBound(queued.op) > opsMax) break;
      decisions.push(decide(ws, this.skuId, queued.op, ctx));
    }
    const decidedBatch = batch.slice(0, decisions.length);
    const writes = ws.writes();
    if (writes.length === 0) {
      for (const [i, queued] of decidedBatch.entries()) this.answer(queued, decisions[i]!, 0);
      return { conflict: false, deferred: batch.slice(decisions.length) };
    }
    const startedMs = performance.now();
    const result = await this.store.commit(ws.checks(), writes);
    if (!result.ok) return { conflict: true, deferred: [] };
    this.adopt(ws, result.revision);
    this.hooks.committed(this.warm!, result.revision, decisions.length, performance.now() - startedMs);
    for (const [i, queued] of decidedBatch.entries()) this.answer(queued, decisions[i]!, result.revision);
    return { conflict: false, deferred: batch.slice(decisions.length) };
  }

  /** Reads, in two rounds, every key the batch may need, into a fresh working set. */
  private async snapshot(batch: Queued[]): Promise<WorkingSet> {
    const ws = new WorkingSet();
    const skuKey = keys.sku(this.skuId);
    const warm = this.warm;
    ws.load(skuKey, warm && { key: skuKey, value: warm.record, version: warm.version });
    await this.loadInto(
      ws,
      batch.flatMap((queued) => firstReadKeys(this.skuId, queued.op)),
    );
    await this.loadInto(
      ws,
      batch.flatMap((queued) => secondReadKeys(ws, this.skuId, queued.op)),
    );
    return ws;
  }

  private async loadInto(ws: WorkingSet, wanted: string[]): Promise<void> {
    const missing = [...new Set(wanted)].filter((key) => !ws.has(key));
    if (missing.length === 0) return;
    const entries = await this.store.getMany(missing);
    for (const [i, key] of missing.entries()) ws.load(key, entries[i]);
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

  private answer(queued: Queued, decision: Decision, revision: number): void {
    const result: OperationResult = decision.ok
      ? {
          ok: true,
          status: decision.status,
          body: { ...decision.body, version: decision.version === 'commit' ? revision : decision.version },
          replayed: decision.replayed,
        }
      : decision;
    this.hooks.decided(queued.op, result);
    queued.resolve(result);
  }

  private answerAll(batch: Queued[], result: OperationResult): void {
    for (const queued of batch) {
      this.hooks.decided(queued.op, result);
      queued.resolve(result);
    }
  }
}
