// Moves: switching SKUs from one store to the other while the service runs.
//
// A move takes its SKUs in groups. For each group it waits until the mirror
// is nearly caught up, fences the group's writers (nothing new is decided;
// what is in flight lands; requests keep queuing), waits until the mirror
// has applied every commit recorded so far, reads the SKUs from the store
// they move to, switches their routes in one etcd transaction, and lets the
// writers go on against the new store. Nothing is lost on the way: every
// commit the group made before the fence is in the outbox, applied to the
// target before the switch, and nothing of the group commits between the
// fence and the switch.
//
// A move is all or nothing. A group that cannot be switched
// (`moveGroupAttemptsMax` attempts) makes the move roll back: every SKU it
// switched goes back the same way, and the move ends `failed`. Its state is
// durable (`routing/move/<id>`) and every switch records the move's progress
// in the same transaction, so a move cut short by a crash goes on at
// restart: forward from `moving`, back from `rolling_back`. Rolling back is
// not allowed to stop half-way: while it cannot proceed (a store down) it
// tries again. Moves run one at a time, in the order they were asked for.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  moveDrainTimeoutMs,
  moveFenceLagEntriesMax,
  moveGroupAttemptsMax,
  moveGroupSkusMax,
  movePreDrainTimeoutMs,
  moveRetryPauseMs,
  movesKeptMax,
  movesQueuedMax,
  scanPageEntries,
} from '../constants.ts';
import type { SkuRecord } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import { type Rejected, rejected, storeRejection } from '../engine/operations.ts';
import { keys, type StoreKind } from '../layout.ts';
import { type Store, scanPrefix, type Write } from '../store/contract.ts';
import type { MirrorWorker } from './mirror-worker.ts';
import { assertMoveRecord, type MoveRecord, type MoveSelector, type MoveState } from './records.ts';
import { Routing } from './routing.ts';

export type MoveRequest = { to: StoreKind } & MoveSelector;

export interface MoveView {
  id: string;
  to: StoreKind;
  from: StoreKind;
  selector: MoveSelector;
  state: MoveState;
  selected: number;
  moved: number;
  createdAt: string;
  updatedAt: string;
  error: string | null;
}

export interface MovesDeps {
  routing: Routing;
  engine: Engine;
  /** Where move records live (etcd, not behind an outbox). */
  etcd: Store;
  worker: (from: StoreKind, to: StoreKind) => MirrorWorker;
  newId: () => string;
  log: Logger;
}

/** A group could not be switched this time. */
class MoveError extends Error {}

const unfinished: readonly MoveState[] = ['pending', 'moving', 'rolling_back'];

export class Moves {
  private readonly deps: MovesDeps;
  private readonly records = new Map<string, MoveRecord>();
  private readonly queue: string[] = [];
  private stopped = false;
  /** Aborts the waits of a group under way when the service stops. */
  private readonly stopping = new AbortController();
  private wake: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(deps: MovesDeps) {
    this.deps = deps;
  }

  /** Reads every move; those a crash cut short go on first, in the order they were asked for. */
  async start(): Promise<void> {
    for await (const page of scanPrefix<MoveRecord>(this.deps.etcd, keys.routingMovePrefix, scanPageEntries)) {
      for (const entry of page) {
        assertMoveRecord(entry.value, entry.key);
        this.records.set(entry.value.id, entry.value);
      }
    }
    const ids = [...this.records.keys()].sort();
    this.queue.push(...ids.filter((id) => unfinished.includes(this.records.get(id)!.state)));
    if (this.queue.length > 0) this.deps.log.warn({ moves: this.queue }, 'moves cut short by a stop go on now');
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.deps.routing.stop();
    this.wake?.();
    await this.running;
  }

  get(id: string): MoveView | undefined {
    const record = this.records.get(id);
    return record && view(record);
  }

  /** Every move kept, newest first. */
  list(): MoveView[] {
    return [...this.records.values()].sort((a, b) => (a.id < b.id ? 1 : -1)).map(view);
  }

  /** Whether a move is still under way (or waiting to start). */
  unfinished(): boolean {
    return [...this.records.values()].some((record) => unfinished.includes(record.state));
  }

  /** Moves by state, for the metrics. */
  countByState(): Record<MoveState, number> {
    const counts: Record<MoveState, number> = { pending: 0, moving: 0, rolling_back: 0, done: 0, failed: 0 };
    for (const record of this.records.values()) counts[record.state]++;
    return counts;
  }

  /** Records a move and queues it; the answer is its state now (pending). */
  async create(request: MoveRequest): Promise<MoveView | Rejected> {
    const { routing } = this.deps;
    if (!routing.seeded) return rejected('mirror_not_ready', 'the initial copy into the mirror is still running');
    if (this.queue.length >= movesQueuedMax) {
      return rejected('move_queue_full', `${movesQueuedMax} moves are waiting already; retry once one has finished`);
    }
    const { to, ...selector } = request;
    const refused = this.refuseSelection(selector);
    if (refused) return refused;
    const nowMs = Date.now();
    const record: MoveRecord = {
      id: this.deps.newId(),
      to,
      from: routing.other(to),
      selector,
      state: 'pending',
      createdAtMs: nowMs,
      updatedAtMs: nowMs,
      selected: 0,
      moved: 0,
      error: null,
    };
    try {
      await this.deps.etcd.commit([], [recordWrite(record)]);
    } catch (error) {
      return storeRejection(error, 'the move could not be recorded');
    }
    this.records.set(record.id, record);
    this.queue.push(record.id);
    this.wake?.();
    return view(record);
  }

  private refuseSelection(selector: MoveSelector): Rejected | undefined {
    if ('skus' in selector) {
      const unknownSkus = selector.skus.filter((sku) => this.deps.engine.getSku(sku) === undefined);
      if (unknownSkus.length > 0)
        return rejected('sku_not_found', 'the move names SKUs that do not exist', { unknownSkus });
    }
    if ('product' in selector && this.select(selector).length === 0) {
      return rejected('sku_not_found', `product ${selector.product} has no SKUs`);
    }
    return undefined;
  }

  /** The SKUs a selector names now. */
  private select(selector: MoveSelector): string[] {
    const { engine } = this.deps;
    if ('skus' in selector) return [...new Set(selector.skus)];
    if ('product' in selector)
      return engine.skuIds().filter((id) => engine.getSku(id)?.record.product === selector.product);
    return Routing.cohort(engine.skuIds(), selector.percent);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const id = this.queue[0];
      if (id === undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      try {
        await this.run(this.records.get(id)!);
        this.queue.shift();
        await this.prune();
      } catch (error) {
        // Only stopping ends a run early; the move goes on at the next start.
        if (!this.stopped) this.deps.log.error({ err: error, move: id }, 'move stopped unexpectedly');
        if (!this.stopped) await sleep(moveRetryPauseMs);
      }
    }
  }

  private async run(move: MoveRecord): Promise<void> {
    const { log } = this.deps;
    if (move.state === 'pending') await this.persist(move, { state: 'moving' });
    if (move.state === 'moving') {
      log.info({ move: move.id, to: move.to, selector: move.selector }, 'move started');
      try {
        await this.forward(move);
        await this.persist(move, { state: 'done' });
        log.info({ move: move.id, moved: move.moved }, 'move done');
        return;
      } catch (error) {
        if (this.stopped) throw error;
        log.error({ err: error, move: move.id }, 'move failed; rolling back');
        await this.persist(move, { state: 'rolling_back', error: (error as Error).message });
      }
    }
    if (move.state === 'rolling_back') {
      await this.back(move);
      await this.persist(move, { state: 'failed' });
      log.warn({ move: move.id, error: move.error }, 'move rolled back');
    }
  }

  /** Switches every selected SKU not on `to` yet, group by group. */
  private async forward(move: MoveRecord): Promise<void> {
    const selected = this.select(move.selector);
    if (move.selected !== selected.length) await this.persist(move, { selected: selected.length });
    const todo = selected.filter((sku) => this.deps.routing.kindOf(sku) !== move.to);
    for (const group of groups(todo, this.groupSize())) {
      for (let attempt = 1; ; attempt++) {
        if (this.stopped) throw new MoveError('stopping');
        try {
          if (await this.switchGroup(move, group, move.from, move.to)) break;
          throw new MoveError('etcd refused the switch');
        } catch (error) {
          if (attempt >= moveGroupAttemptsMax || this.stopped) throw error;
          this.deps.log.warn({ err: error, move: move.id, attempt }, 'move: group not switched; trying again');
        }
      }
    }
  }

  /** Switches back every SKU this move put on `to`, until none is left there. */
  private async back(move: MoveRecord): Promise<void> {
    const { routing, engine } = this.deps;
    const mine = () =>
      engine.skuIds().filter((sku) => routing.moveOf(sku) === move.id && routing.kindOf(sku) === move.to);
    for (let left = mine(); left.length > 0; left = mine()) {
      if (this.stopped) throw new MoveError('stopping');
      try {
        await this.switchGroup(move, left.slice(0, this.groupSize()), move.to, move.from);
      } catch (error) {
        this.deps.log.warn({ err: error, move: move.id }, 'move: rollback waits for the stores');
        await sleep(moveRetryPauseMs);
      }
    }
  }

  private groupSize(): number {
    return Math.min(moveGroupSkusMax, this.deps.etcd.limits.commitWritesMax - 1);
  }

  /**
   * Fences `skus`, waits for the mirror `from` -> `to` to hold every commit
   * recorded so far, and switches them. The writers go on either way: on
   * `to` if the switch happened, where they were if not.
   */
  private async switchGroup(move: MoveRecord, skus: readonly string[], from: StoreKind, to: StoreKind) {
    const { routing, engine } = this.deps;
    const worker = this.deps.worker(from, to);
    const source = routing.store(from);
    const target = routing.store(to);
    // Fencing holds requests; first let the mirror come close, so the fence is short.
    const near = Math.max(0, source.settledThrough - moveFenceLagEntriesMax);
    if (!(await this.waitFor(worker.whenCovered(near, movePreDrainTimeoutMs), movePreDrainTimeoutMs))) {
      throw new MoveError(`the mirror ${from} -> ${to} stayed over ${moveFenceLagEntriesMax} entries behind`);
    }
    await Promise.all(skus.map((sku) => engine.fenceSku(sku)));
    let warm: (SkuRecord | undefined)[] = [];
    let versions: number[] = [];
    let switched = false;
    try {
      switched = await routing.exclusive(async () => {
        const through = source.issuedSeq;
        const drained = source.whenSettled(through).then(() => worker.whenCovered(through, moveDrainTimeoutMs));
        if (!(await this.waitFor(drained, moveDrainTimeoutMs))) {
          throw new MoveError(`the mirror ${from} -> ${to} did not apply the fenced SKUs' commits in time`);
        }
        const entries = await target.getMany<SkuRecord>(skus.map((sku) => keys.sku(sku)));
        warm = entries.map((entry) => entry?.value);
        versions = entries.map((entry) => entry?.version ?? 0);
        const moved = move.moved + (to === move.to ? skus.length : -skus.length);
        const next: MoveRecord = { ...move, moved, updatedAtMs: Date.now() };
        const done = await routing.switchTo(skus, to, move.id, recordWrite(next));
        if (done) Object.assign(move, next);
        return done;
      });
    } finally {
      skus.forEach((sku, i) => {
        const record = warm[i];
        if (!switched) engine.unfenceSku(sku);
        else engine.rehomeSku(sku, target, record && { record, version: versions[i]! });
      });
    }
    return switched;
  }

  /** What `waiting` resolves to, or false after `timeoutMs` or once the service stops. */
  private async waitFor(waiting: Promise<boolean>, timeoutMs: number): Promise<boolean> {
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(timeoutMs)]);
    const ended = new Promise<boolean>((resolve) => {
      if (signal.aborted) resolve(false);
      signal.addEventListener('abort', () => resolve(false), { once: true });
    });
    return Promise.race([waiting, ended]);
  }

  /** Writes a change of a move's record; retried until it is durable (or stopping). */
  private async persist(move: MoveRecord, change: Partial<MoveRecord>): Promise<void> {
    const next: MoveRecord = { ...move, ...change, updatedAtMs: Date.now() };
    for (;;) {
      try {
        await this.deps.etcd.commit([], [recordWrite(next)]);
        Object.assign(move, next);
        return;
      } catch (error) {
        if (this.stopped) throw error;
        this.deps.log.warn({ err: error, move: move.id }, 'move: its record could not be written; retrying');
        await sleep(moveRetryPauseMs);
      }
    }
  }

  /** Deletes the oldest finished moves past `movesKeptMax`. */
  private async prune(): Promise<void> {
    const finished = [...this.records.values()]
      .filter((record) => !unfinished.includes(record.state))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const excess = finished.slice(0, Math.max(0, finished.length - movesKeptMax));
    if (excess.length === 0) return;
    const deletes: Write[] = excess.map((record) => ({ type: 'delete', key: keys.routingMove(record.id) }));
    try {
      await this.deps.etcd.commit([], deletes.slice(0, this.deps.etcd.limits.commitWritesMax));
      for (const record of excess) this.records.delete(record.id);
    } catch {
      // Kept a while longer; the next finished move prunes again.
    }
  }
}

function recordWrite(record: MoveRecord): Write {
  return { type: 'put', key: keys.routingMove(record.id), value: record };
}

function view(record: MoveRecord): MoveView {
  return {
    id: record.id,
    to: record.to,
    from: record.from,
    selector: record.selector,
    state: record.state,
    selected: record.selected,
    moved: record.moved,
    createdAt: new Date(record.createdAtMs).toISOString(),
    updatedAt: new Date(record.updatedAtMs).toISOString(),
    error: record.error,
  };
}

function* groups<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
