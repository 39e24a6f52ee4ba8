// `hotstock reconcile`: both stores compared record by record, offline or
// while the service runs.
//
// A first pass merges both stores in key order (diff-scan.ts) and keeps the
// keys that differ. While a service runs, most of those are only the
// mirror's lag, so each is checked again the way a shadow read is: read it on
// its authoritative store (its SKU's, from the routing), note the last entry
// recorded in that store's outbox, wait until the mirror's resume point is
// past it, read the mirror, and read the authoritative version again. When
// that version has not moved, the two values must be equal, so a difference
// then is real. A key that keeps changing is tried again, up to
// `reconcileRecheckRoundsMax` rounds; one whose mirror does not catch up
// (no service running, a mirror down) is reported with how far behind it is.
import { setTimeout as sleep } from 'node:timers/promises';
import { reconcileDifferencesKeptMax, reconcileRecheckRoundsMax, reconcileSettleTimeoutMs } from '../constants.ts';
import {
  idempotencyIdOfExpiry,
  keys,
  type MirrorResume,
  otherStoreKind,
  type RoutingConfig,
  type SkuRoute,
  type StoreKind,
  skuOfEntry,
} from '../layout.ts';
import type { Entry, Store } from '../store/contract.ts';
import { differences, sameValue } from './diff-scan.ts';
import { lastSeq } from './outbox-store.ts';
import { assertMirrorResume, assertRoutingConfig, assertSkuRoute } from './records.ts';

export interface ReconcileDifference {
  key: string;
  /** The store authoritative for the key's SKU (null when no SKU could be found for it). */
  authoritative: StoreKind | null;
  values: Partial<Record<StoreKind, unknown>>;
  /** Why it is reported: it differs with nothing in flight, the mirror is behind, or it never sat still. */
  reason: 'differs' | 'mirror_behind' | 'kept_changing';
}

export interface ReconcileReport {
  /** Keys the first pass found different (some may have settled since). */
  candidates: number;
  /** Candidates past the kept bound: counted, not checked again. */
  uncounted: number;
  differences: ReconcileDifference[];
  /** Outbox entries each direction's mirror had not applied at the end. */
  behind: { from: StoreKind; to: StoreKind; entries: number }[];
}

/** Stall bound: a resume point that has not moved for this long is not being advanced (no service running). */
const stalledAfterMs = 2_000;
const pollMs = 100;

interface Candidate {
  key: string;
  authoritative: StoreKind | null;
}

export async function reconcile(stores: Record<StoreKind, Store>): Promise<ReconcileReport> {
  const report: ReconcileReport = { candidates: 0, uncounted: 0, differences: [], behind: [] };
  let candidates: Candidate[] = [];
  for await (const difference of differences(stores.lmdb, stores.etcd)) {
    report.candidates++;
    if (candidates.length >= reconcileDifferencesKeptMax) report.uncounted++;
    else candidates.push({ key: difference.key, authoritative: null });
  }
  candidates = await withAuthority(candidates, stores);
  for (let round = 0; round < reconcileRecheckRoundsMax && candidates.length > 0; round++) {
    candidates = await recheck(candidates, stores, report);
  }
  for (const candidate of candidates) report.differences.push(await reported(candidate, stores, 'kept_changing'));
  for (const [from, to] of [
    ['lmdb', 'etcd'],
    ['etcd', 'lmdb'],
  ] as const) {
    const entries = (await lastSeq(stores[from], 0)) - (await appliedThrough(stores[to], from));
    if (entries > 0) report.behind.push({ from, to, entries });
  }
  return report;
}

/** Each candidate's authoritative store: its SKU's route, or the routing's default. */
async function withAuthority(candidates: Candidate[], stores: Record<StoreKind, Store>) {
  const etcd = stores.etcd; // the routing is kept on etcd
  const config = (await etcd.get<RoutingConfig>(keys.routingConfig))?.value;
  if (config === undefined) return candidates; // never mirrored: no side is authoritative
  assertRoutingConfig(config);
  const skus = await Promise.all(candidates.map((candidate) => skuOfKey(candidate.key, stores)));
  const routeKeys = [...new Set(skus.filter((sku) => sku !== undefined))].map((sku) => keys.routingSku(sku));
  const routes = new Map<string, SkuRoute>();
  for (const entry of await etcd.getMany<SkuRoute>(routeKeys)) {
    if (entry === undefined) continue;
    assertSkuRoute(entry.value, entry.key);
    routes.set(entry.key.slice(keys.routingSkuPrefix.length), entry.value);
  }
  return candidates.map((candidate, i) => {
    const sku = skus[i];
    const store = sku === undefined ? null : (routes.get(sku)?.store ?? config.defaultStore);
    return { ...candidate, authoritative: store };
  });
}

/** The SKU a key belongs to: from the key where it says, else from its record (on either store). */
async function skuOfKey(key: string, stores: Record<StoreKind, Store>): Promise<string | undefined> {
  const fromKey = skuOfEntry(key, undefined);
  if (fromKey !== undefined) return fromKey;
  const recordKey = key.startsWith(keys.idempotencyExpiryPrefix) ? keys.idempotency(idempotencyIdOfExpiry(key)) : key;
  for (const store of [stores.lmdb, stores.etcd]) {
    const entry = await store.get(recordKey);
    const sku = entry === undefined ? undefined : skuOfEntry(recordKey, entry.value);
    if (sku !== undefined) return sku;
  }
  return undefined;
}

/** One round: settles what it can, reports what differs for sure, returns what is still moving. */
async function recheck(candidates: Candidate[], stores: Record<StoreKind, Store>, report: ReconcileReport) {
  const still: Candidate[] = [];
  for (const authoritative of ['lmdb', 'etcd', null] as const) {
    const mine = candidates.filter((candidate) => candidate.authoritative === authoritative);
    if (mine.length === 0) continue;
    if (authoritative === null) {
      // No SKU to go by: equal now, or reported as it stands.
      for (const candidate of mine) {
        const [a, b] = await Promise.all([stores.lmdb.get(candidate.key), stores.etcd.get(candidate.key)]);
        if (!sameValue(a?.value ?? null, b?.value ?? null))
          report.differences.push(await reported(candidate, stores, 'differs'));
      }
      continue;
    }
    const mirror = otherStoreKind(authoritative);
    const before = await stores[authoritative].getMany(mine.map((candidate) => candidate.key));
    const recorded = await lastSeq(stores[authoritative], 0);
    if (!(await mirrorReaches(stores[mirror], authoritative, recorded))) {
      for (const candidate of mine) report.differences.push(await reported(candidate, stores, 'mirror_behind'));
      continue;
    }
    const mirrored = await stores[mirror].getMany(mine.map((candidate) => candidate.key));
    const after = await stores[authoritative].getMany(mine.map((candidate) => candidate.key));
    mine.forEach((candidate, i) => {
      if (after[i]?.version !== before[i]?.version) still.push(candidate);
      else if (!sameValue(before[i]?.value ?? null, mirrored[i]?.value ?? null)) {
        report.differences.push(asDifference(candidate, authoritative, before[i], mirrored[i], 'differs'));
      }
    });
  }
  return still;
}

/** Waits until the mirror's resume point for `source` is at `seq` or past it; false if it stalls first. */
async function mirrorReaches(mirror: Store, source: StoreKind, seq: number): Promise<boolean> {
  const deadline = Date.now() + reconcileSettleTimeoutMs;
  let last = -1;
  let movedAt = Date.now();
  for (;;) {
    const applied = await appliedThrough(mirror, source);
    if (applied >= seq) return true;
    if (applied !== last) {
      last = applied;
      movedAt = Date.now();
    }
    if (Date.now() > deadline || Date.now() - movedAt > stalledAfterMs) return false;
    await sleep(pollMs);
  }
}

async function appliedThrough(mirror: Store, source: StoreKind): Promise<number> {
  const key = keys.mirrorResume(source);
  const resume = (await mirror.get<MirrorResume>(key))?.value;
  if (resume === undefined) return 0;
  assertMirrorResume(resume, key);
  return resume.appliedThrough;
}

/** A candidate reported as both stores hold it now. */
async function reported(candidate: Candidate, stores: Record<StoreKind, Store>, reason: ReconcileDifference['reason']) {
  const first: StoreKind = candidate.authoritative ?? 'lmdb';
  const second = otherStoreKind(first);
  const [own, copy] = await Promise.all([stores[first].get(candidate.key), stores[second].get(candidate.key)]);
  return asDifference(candidate, candidate.authoritative, own, copy, reason);
}

function asDifference(
  candidate: Candidate,
  authoritative: StoreKind | null,
  own: Entry | undefined,
  copy: Entry | undefined,
  reason: ReconcileDifference['reason'],
): ReconcileDifference {
  const first: StoreKind = authoritative ?? 'lmdb';
  const second = otherStoreKind(first);
  return {
    key: candidate.key,
    authoritative,
    values: { [first]: own?.value ?? null, [second]: copy?.value ?? null },
    reason,
  };
}
