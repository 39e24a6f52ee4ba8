// Shadow reads: a SKU or an order answered from its authoritative store is
// also read from the mirror and compared, after the answer has gone out, so
// the answer is never changed nor delayed.
//
// The comparison allows for the mirror's lag without guessing at it: read
// the authoritative record (version v), note the last commit recorded in
// the outbox, wait until the mirror has applied through it, read the mirror,
// then read the authoritative version again. If it is still v, no commit
// wrote the record since v, so the mirror, holding every commit up to and
// past v, must hold exactly the authoritative value: a difference is a real
// mismatch, never lag. If the record moved on meanwhile, the comparison is
// tried again within `shadowReadTimeoutMs`; past it (a hot SKU that never
// sits still, a mirror far behind) the read counts as `skipped`. So does a
// read while `shadowReadsInFlightMax` others are being compared.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { shadowMismatchesKept, shadowReadsInFlightMax, shadowReadTimeoutMs } from '../constants.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import { keys, type StoreKind } from '../layout.ts';
import type { Entry, Store } from '../store/contract.ts';
import { sameValue } from './diff-scan.ts';
import type { MirrorWorker } from './mirror-worker.ts';
import type { Routing } from './routing.ts';

export type ShadowResult = 'match' | 'mismatch' | 'error' | 'skipped';

export interface ShadowMismatch {
  at: string;
  kind: 'sku' | 'order';
  id: string;
  authoritative: { store: StoreKind; version: number; value: unknown };
  mirror: { store: StoreKind; version: number | null; value: unknown };
}

export interface ShadowDeps {
  routing: Routing;
  engine: Engine;
  worker: (from: StoreKind, to: StoreKind) => MirrorWorker;
  /** A store as the mirror path reads it (behind the mirror's breaker, not the one requests use). */
  reader: (kind: StoreKind) => Store;
  /** Share of reads without `X-Canary: shadow` that are compared anyway (0 to 1). */
  ratio: number;
  counted: (result: ShadowResult) => void;
  log: Logger;
}

/** One side of a comparison: the record as read, or nothing. */
type Read = { value: unknown; version: number } | undefined;

interface Subject {
  kind: 'sku' | 'order';
  id: string;
  /** The authoritative record now, and the store it is on. */
  authoritative(): Promise<{ store: StoreKind; read: Read }>;
  key: string;
}

export class ShadowReads {
  private readonly deps: ShadowDeps;
  private inFlight = 0;
  private readonly kept: ShadowMismatch[] = [];

  constructor(deps: ShadowDeps) {
    this.deps = deps;
  }

  /** Whether to compare this read: asked for with `X-Canary: shadow`, or sampled. */
  wanted(asked: boolean): boolean {
    return asked || (this.deps.ratio > 0 && Math.random() < this.deps.ratio);
  }

  sku(skuId: string): void {
    const { engine, routing } = this.deps;
    this.start({
      kind: 'sku',
      id: skuId,
      key: keys.sku(skuId),
      authoritative: async () => {
        const state = engine.getSku(skuId);
        return {
          store: routing.kindOf(skuId),
          read: state && { value: state.record satisfies SkuRecord, version: state.version },
        };
      },
    });
  }

  order(orderId: string): void {
    const { routing } = this.deps;
    this.start({
      kind: 'order',
      id: orderId,
      key: keys.order(orderId),
      authoritative: async () => {
        const entry: Entry<OrderRecord> | undefined = await routing.getOrder(orderId);
        return { store: entry ? routing.kindOf(entry.value.sku) : routing.defaultStore, read: entry };
      },
    });
  }

  /** The last mismatches, newest first. */
  mismatches(): ShadowMismatch[] {
    return [...this.kept].reverse();
  }

  private start(subject: Subject): void {
    if (!this.deps.routing.seeded || this.inFlight >= shadowReadsInFlightMax) {
      this.deps.counted('skipped');
      return;
    }
    this.inFlight++;
    this.compare(subject)
      .catch((error: unknown) => {
        this.deps.log.debug({ err: error, kind: subject.kind, id: subject.id }, 'shadow read failed');
        return 'error' as const;
      })
      .then((result) => {
        this.inFlight--;
        this.deps.counted(result);
      });
  }

  private async compare(subject: Subject): Promise<ShadowResult> {
    const { routing } = this.deps;
    const deadlineMs = Date.now() + shadowReadTimeoutMs;
    while (Date.now() < deadlineMs) {
      const epoch = routing.epoch;
      const first = await subject.authoritative();
      const mirrorKind = routing.other(first.store);
      const outbox = routing.store(first.store);
      const through = outbox.issuedSeq;
      const worker = this.deps.worker(first.store, mirrorKind);
      const leftMs = () => Math.max(0, deadlineMs - Date.now());
      const covered = await Promise.race([
        outbox.whenSettled(through).then(() => worker.whenCovered(through, leftMs())),
        sleep(leftMs(), false, { ref: false }),
      ]);
      if (!covered) return 'skipped';
      const mirrored = await this.deps.reader(mirrorKind).get(subject.key);
      const again = await subject.authoritative();
      if (routing.epoch !== epoch || again.read?.version !== first.read?.version) continue;
      if (sameValue(first.read?.value ?? null, mirrored?.value ?? null)) return 'match';
      this.keep({
        at: new Date().toISOString(),
        kind: subject.kind,
        id: subject.id,
        authoritative: { store: first.store, version: first.read?.version ?? 0, value: first.read?.value ?? null },
        mirror: { store: mirrorKind, version: mirrored?.version ?? null, value: mirrored?.value ?? null },
      });
      return 'mismatch';
    }
    return 'skipped';
  }

  private keep(mismatch: ShadowMismatch): void {
    this.kept.push(mismatch);
    if (this.kept.length > shadowMismatchesKept) this.kept.shift();
    this.deps.log.warn({ kind: mismatch.kind, id: mismatch.id }, 'shadow read: the mirror differs');
  }
}
