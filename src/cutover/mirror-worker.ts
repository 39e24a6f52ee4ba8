// The mirror worker: applies one store's outbox to the other store, in
// sequence order, exactly once.
//
// - **Exactly once.** Each commit to the mirror carries the resume point
//   (`mirror/<source kind>`: the last entry applied, and how much of a
//   partly applied one) with the writes it applied, so after a SIGKILL at any
//   moment the worker reads the resume point and goes on right after what
//   the mirror holds: nothing is applied twice, nothing skipped.
// - **In order.** Entries are read in sequence order up to the outbox's
//   `settledThrough` (no commit below it is still in flight), so an entry
//   never overtakes one that could still land before it. Consecutive
//   entries are applied together, each key once with its last value, as far
//   as one commit of the mirror holds; an entry bigger than that (an LMDB
//   batch for etcd's 128-operation transactions) is applied in parts.
// - **Off the hot path.** The worker runs on its own schedule and only reads
//   the source's outbox and deletes applied entries; commits never wait for
//   it. When the mirror fails, its own circuit breaker opens, the worker
//   backs off, and the outbox grows (see `mirrorOutboxEntriesWarn`).
// - **The initial copy.** When the mirror is first attached, the store every
//   SKU starts on is copied whole (seed.ts) before the outbox is applied
//   from where the copy began.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  mirrorApplyEntriesMax,
  mirrorIdleWaitMs,
  mirrorOutboxEntriesWarn,
  mirrorOutboxWarnIntervalMs,
  mirrorRetryBackoffMsMax,
  mirrorRetryBackoffMsMin,
  mirrorTrimEntriesMax,
} from '../constants.ts';
import { keys, type MirrorResume, type OutboxEntry, seqOfOutboxKey } from '../layout.ts';
import type { BackendBreaker, BreakerState } from '../store/backend-breaker.ts';
import { commitBytes, type Store, type Write } from '../store/contract.ts';
import type { OutboxStore } from './outbox-store.ts';
import { assertMirrorResume, assertOutboxEntry } from './records.ts';
import { copyStore } from './seed.ts';

export interface MirrorWorkerOptions {
  /** The authoritative side's outbox: its numbering and what has settled. */
  outbox: OutboxStore;
  /** The same store, read and trimmed through the mirror's breaker. */
  source: Store;
  /** The mirror, written directly (what it applies is not recorded in its own outbox). */
  target: Store;
  breaker: BackendBreaker;
  /** Set when this worker must first copy its source whole; called once the copy is in. */
  seed: { done(): Promise<void> } | undefined;
  log: Logger;
}

export type MirrorPhase = 'starting' | 'copying' | 'running';

/** What the admin routing view and the metrics show of one direction. */
export interface MirrorStatus {
  from: Store['kind'];
  to: Store['kind'];
  phase: MirrorPhase;
  /** The last outbox sequence number handed to a commit. */
  recordedSeq: number;
  /** Every entry through here is applied (or never existed). */
  appliedSeq: number;
  lagRevisions: number;
  lagSeconds: number;
  /** Entries applied since start. */
  appliedEntries: number;
  outboxEntries: number;
  breaker: BreakerState;
  lastError: string | null;
}

interface Read {
  seq: number;
  entry: OutboxEntry;
}

/** Bytes the resume point adds to a commit, generously: keys and a small JSON object. */
const resumeBytesMax = 256;

export class MirrorWorker {
  private readonly options: MirrorWorkerOptions;
  private resume: MirrorResume | undefined;
  /** Every entry through here is applied or was verified never to exist. */
  private covered = 0;
  private phase: MirrorPhase = 'starting';
  private appliedEntries = 0;
  /** When the oldest entry not yet applied was recorded, as far as the worker has read. */
  private pendingAtMs: number | undefined;
  private lastReadAtMs = Date.now();
  private lastError: string | null = null;
  private lastBoundWarningMs = 0;
  private readonly coveredWaiters = new Set<{ seq: number; resolve: (covered: boolean) => void }>();
  private stopped = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> = Promise.resolve();
  private unlisten: () => void = () => {};

  constructor(options: MirrorWorkerOptions) {
    this.options = options;
  }

  get from(): Store['kind'] {
    return this.options.outbox.kind;
  }

  get to(): Store['kind'] {
    return this.options.target.kind;
  }

  /** Entries applied since start. */
  get applied(): number {
    return this.appliedEntries;
  }

  /** True once the initial copy (if any) is in and entries are being applied. */
  get ready(): boolean {
    return this.phase === 'running';
  }

  start(): void {
    this.unlisten = this.options.outbox.onSettled(() => this.wake?.());
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unlisten();
    this.wake?.();
    await this.running;
    for (const waiter of this.coveredWaiters) waiter.resolve(false);
    this.coveredWaiters.clear();
  }

  /** Resolves true once every entry through `seq` is applied, false after `timeoutMs` (or on stop). */
  whenCovered(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.covered >= seq && this.phase === 'running') return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        resolve: (covered: boolean) => {
          clearTimeout(timer);
          this.coveredWaiters.delete(waiter);
          resolve(covered);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      this.coveredWaiters.add(waiter);
    });
  }

  /** Entries recorded and settled on the source that the mirror does not hold yet. */
  lagEntries(): number {
    return Math.max(0, this.options.outbox.settledThrough - this.covered);
  }

  lagSeconds(nowMs = Date.now()): number {
    if (this.lagEntries() === 0) return 0;
    return Math.max(0, nowMs - (this.pendingAtMs ?? this.lastReadAtMs)) / 1000;
  }

  status(): MirrorStatus {
    return {
      from: this.from,
      to: this.to,
      phase: this.phase,
      recordedSeq: this.options.outbox.issuedSeq,
      appliedSeq: this.covered,
      lagRevisions: this.lagEntries(),
      lagSeconds: this.lagSeconds(),
      appliedEntries: this.appliedEntries,
      outboxEntries: this.options.outbox.entries,
      breaker: this.options.breaker.state,
      lastError: this.lastError,
    };
  }

  private async loop(): Promise<void> {
    let backoffMs = mirrorRetryBackoffMsMin;
    while (!this.stopped) {
      this.warnPastBound();
      try {
        if (this.resume === undefined) await this.begin();
        const progressed = await this.round();
        if (this.lastError !== null) this.options.log.info({ from: this.from, to: this.to }, 'mirror applying again');
        this.lastError = null;
        backoffMs = mirrorRetryBackoffMsMin;
        if (!progressed) await this.pause(mirrorIdleWaitMs);
      } catch (error) {
        if (this.lastError === null) {
          this.options.log.warn({ err: error, from: this.from, to: this.to }, 'mirror failed; retrying with backoff');
        }
        this.lastError = (error as Error).message ?? String(error);
        await this.pause(backoffMs);
        backoffMs = Math.min(mirrorRetryBackoffMsMax, backoffMs * 2);
      }
    }
  }

  /** Sleeps up to `ms`; a settled commit or stop() wakes it early. */
  private async pause(ms: number): Promise<void> {
    if (this.stopped) return;
    const controller = new AbortController();
    this.wake = () => controller.abort();
    await sleep(ms, undefined, { signal: controller.signal }).catch(() => undefined);
    this.wake = undefined;
  }

  /** The mirror's resume point, or the initial copy that makes one. */
  private async begin(): Promise<void> {
    const { outbox, target, breaker, log } = this.options;
    const resumeKey = keys.mirrorResume(outbox.kind);
    const saved = (await breaker.execute(() => target.get<MirrorResume>(resumeKey)))?.value;
    if (saved !== undefined) assertMirrorResume(saved, resumeKey);
    if (saved !== undefined && saved.stream === outbox.stream) {
      this.resume = saved;
      // A copy that landed before the process could record it as done.
      await this.options.seed?.done();
    } else if (this.options.seed !== undefined) {
      this.resume = await this.copy();
    } else {
      if (saved !== undefined) {
        log.error(
          { from: this.from, to: this.to, followed: saved.stream, outbox: outbox.stream },
          'the mirror followed another outbox; applying this one from its start (hotstock reconcile shows what differs)',
        );
      }
      this.resume = { stream: outbox.stream, appliedThrough: outbox.trimmedThrough, partial: null };
    }
    this.covered = this.resume.appliedThrough;
    this.phase = 'running';
    // Waiters that came while the worker was starting may be covered already.
    this.resolveCovered();
  }

  /** Copies the source whole, then resumes from the last commit settled before the copy began. */
  private async copy(): Promise<MirrorResume> {
    const { outbox, source, target, breaker, log } = this.options;
    this.phase = 'copying';
    const from = outbox.settledThrough;
    log.info({ from: this.from, to: this.to, outboxSeq: from }, 'mirror: initial copy started');
    const copied = await breaker.execute(() => copyStore(source, target));
    const resume: MirrorResume = { stream: outbox.stream, appliedThrough: from, partial: null };
    await breaker.execute(() => target.commit([], [put(keys.mirrorResume(outbox.kind), resume)]));
    await this.options.seed!.done();
    log.info({ from: this.from, to: this.to, ...copied }, 'mirror: initial copy done');
    return resume;
  }

  /** Reads and applies one page of the outbox; false when there was nothing to apply. */
  private async round(): Promise<boolean> {
    const { outbox, source, breaker } = this.options;
    const settled = outbox.settledThrough;
    const resume = this.resume!;
    const first = resume.partial?.seq ?? resume.appliedThrough + 1;
    if (first > settled) {
      this.coverThrough(settled);
      await this.trim();
      return false;
    }
    const page = await breaker.execute(() =>
      source.range<OutboxEntry>({
        start: keys.outboxEntry(first),
        end: keys.outboxEntry(settled + 1),
        limit: mirrorApplyEntriesMax,
      }),
    );
    this.lastReadAtMs = Date.now();
    const reads: Read[] = page.map((entry) => {
      assertOutboxEntry(entry.value, entry.key);
      return { seq: seqOfOutboxKey(entry.key), entry: entry.value };
    });
    this.pendingAtMs = reads[0]?.entry.atMs;
    await this.apply(reads);
    // A short page read everything settled: what is not there never will be.
    if (page.length < mirrorApplyEntriesMax) this.coverThrough(settled);
    this.pendingAtMs = page.length < mirrorApplyEntriesMax ? undefined : reads.at(-1)?.entry.atMs;
    await this.trim();
    return reads.length > 0;
  }

  /** Applies entries in order: consecutive ones together while one commit of the mirror holds them. */
  private async apply(reads: readonly Read[]): Promise<void> {
    const { commitWritesMax, commitBytesMax } = this.options.target.limits;
    const room = { writes: commitWritesMax - 1, bytes: commitBytesMax - resumeBytesMax };
    let group = new Group();
    for (const [i, { seq, entry }] of reads.entries()) {
      const offset = this.resume!.partial?.seq === seq ? this.resume!.partial.offset : 0;
      const writes = entry.writes.slice(offset);
      const bytes = commitBytes(writes);
      if (group.fits(writes, bytes, room)) {
        group.add(seq, writes, bytes);
        continue;
      }
      if (group.entries > 0) await this.flush(group, reads[i]?.entry.atMs);
      group = new Group();
      if (group.fits(writes, bytes, room)) group.add(seq, writes, bytes);
      else await this.applyInParts(seq, writes, offset, room);
    }
    if (group.entries > 0) await this.flush(group, undefined);
  }

  /** One commit of the mirror: the group's writes and the resume point after its last entry. */
  private async flush(group: Group, nextAtMs: number | undefined): Promise<void> {
    const resume: MirrorResume = { stream: this.resume!.stream, appliedThrough: group.lastSeq, partial: null };
    await this.commitToMirror([...group.writes.values()], resume);
    this.appliedEntries += group.entries;
    if (nextAtMs !== undefined) this.pendingAtMs = nextAtMs;
  }

  /** An entry too big for one commit of the mirror, in parts; each part records how far it got. */
  private async applyInParts(seq: number, writes: readonly Write[], offset: number, room: Room): Promise<void> {
    let done = 0;
    while (done < writes.length) {
      const part = new Group();
      let end = done;
      while (end < writes.length) {
        const write = [writes[end]!];
        const bytes = commitBytes(write);
        if (!part.fits(write, bytes, room)) break;
        part.add(seq, write, bytes);
        end++;
      }
      if (end === done) throw new Error(`outbox entry ${seq} holds a write larger than one commit of the mirror`);
      const whole = end === writes.length;
      const resume: MirrorResume = whole
        ? { stream: this.resume!.stream, appliedThrough: seq, partial: null }
        : { ...this.resume!, partial: { seq, offset: offset + end } };
      await this.commitToMirror([...part.writes.values()], resume);
      done = end;
    }
    this.appliedEntries++;
  }

  private async commitToMirror(writes: Write[], resume: MirrorResume): Promise<void> {
    const { outbox, target, breaker } = this.options;
    writes.push(put(keys.mirrorResume(outbox.kind), resume));
    // No checks: the mirror is written by this worker alone, and the resume point says what it holds.
    await breaker.execute(() => target.commit([], writes));
    this.resume = resume;
    this.coverThrough(resume.appliedThrough);
  }

  private coverThrough(seq: number): void {
    if (seq <= this.covered) return;
    this.covered = seq;
    this.resolveCovered();
  }

  private resolveCovered(): void {
    if (this.phase !== 'running') return;
    for (const waiter of [...this.coveredWaiters]) if (waiter.seq <= this.covered) waiter.resolve(true);
  }

  /** Deletes applied entries from the outbox, a bounded number at a time, with the outbox's identity record. */
  private async trim(): Promise<void> {
    const { outbox, source, breaker } = this.options;
    const from = outbox.trimmedThrough;
    const chunk = Math.min(mirrorTrimEntriesMax, source.limits.commitWritesMax - 1);
    const through = Math.min(this.covered, from + chunk);
    if (through <= from) return;
    const writes: Write[] = [];
    for (let seq = from + 1; seq <= through; seq++) writes.push({ type: 'delete', key: keys.outboxEntry(seq) });
    writes.push(put(keys.outboxMeta, { stream: outbox.stream, trimmedThrough: through }));
    await breaker.execute(() => source.commit([], writes));
    outbox.noteTrimmed(through);
  }

  /** Past the outbox bound the service says so loudly, and again every interval while it stays there. */
  private warnPastBound(): void {
    const entries = this.options.outbox.entries;
    const nowMs = Date.now();
    if (entries < mirrorOutboxEntriesWarn || nowMs - this.lastBoundWarningMs < mirrorOutboxWarnIntervalMs) return;
    this.lastBoundWarningMs = nowMs;
    this.options.log.error(
      {
        from: this.from,
        to: this.to,
        outboxEntries: entries,
        bound: mirrorOutboxEntriesWarn,
        lastError: this.lastError,
      },
      'mirror outbox past its bound: commits go on and the outbox keeps growing until the mirror applies it',
    );
  }
}

interface Room {
  writes: number;
  bytes: number;
}

/** Writes of consecutive entries to apply in one commit, each key once with its last value. */
class Group {
  readonly writes = new Map<string, Write>();
  entries = 0;
  lastSeq = 0;
  private bytes = 0;

  /** Whether `writes` (of `bytes`, as commitBytes counts them) fit in with what the group holds. */
  fits(writes: readonly Write[], bytes: number, room: Room): boolean {
    let added = 0;
    for (const write of writes) if (!this.writes.has(write.key)) added++;
    return this.writes.size + added <= room.writes && this.bytes + bytes <= room.bytes;
  }

  add(seq: number, writes: readonly Write[], bytes: number): void {
    for (const write of writes) {
      // Deleted and set again, so the map keeps the order of last writes.
      this.writes.delete(write.key);
      this.writes.set(write.key, write);
    }
    this.bytes += bytes;
    this.entries++;
    this.lastSeq = seq;
  }
}

function put(key: string, value: unknown): Write {
  return { type: 'put', key, value };
}
