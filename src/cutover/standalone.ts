// Running one store alone after a cutover ("retiring" the other) is safe only
// when that store holds everything: every SKU authoritative on it, and every
// commit the other store recorded applied to it. Only a service with a mirror
// can know, so it says so on each store when it stops cleanly (`standalone`);
// a start without a mirror on a store that took part in a cutover checks it,
// and a crash leaves it saying no. A store that then runs alone gets a new
// outbox identity, so that a mirror attached to it later is copied afresh,
// and the routing it left in etcd is started over.
import { randomUUID } from 'node:crypto';
import { keys, type OutboxMeta, type StandaloneRecord } from '../layout.ts';
import type { Store } from '../store/contract.ts';
import { assertOutboxMeta, assertStandalone } from './records.ts';

/** A store that may not run alone now, with what to do instead. */
export class StandaloneRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StandaloneRefused';
  }
}

async function meta(store: Store): Promise<OutboxMeta | undefined> {
  const value = (await store.get<OutboxMeta>(keys.outboxMeta))?.value;
  if (value !== undefined) assertOutboxMeta(value, store.kind);
  return value;
}

async function record(store: Store): Promise<StandaloneRecord | undefined> {
  const value = (await store.get<StandaloneRecord>(keys.standalone))?.value;
  if (value !== undefined) assertStandalone(value, store.kind);
  return value;
}

/** Says on `store` whether it may run alone; `stream` is its outbox's identity now. */
export async function markStandalone(store: Store, allowed: boolean, stream: string): Promise<void> {
  const value: StandaloneRecord = { allowed, stream };
  await store.commit([], [{ type: 'put', key: keys.standalone, value }]);
}

/**
 * Before a start without a mirror: a store that never had one starts as
 * always; one that had must have been left allowed to run alone. Its outbox
 * then gets a new identity: what it commits alone is recorded nowhere.
 */
export async function startStandalone(store: Store): Promise<void> {
  const outbox = await meta(store);
  if (outbox === undefined) return;
  const mark = await record(store);
  if (mark?.allowed !== true) {
    throw new StandaloneRefused(
      `this ${store.kind} store serves in a cutover with a mirror, and its last clean stop did not leave every SKU on it with everything the other store recorded: start it with --mirror as before, move every SKU to it (POST /v1/admin/routing/moves {"to": "${store.kind}", "percent": 100}), stop it with SIGTERM, then start it alone`,
    );
  }
  if (mark.stream !== outbox.stream) return; // alone already
  const next: OutboxMeta = { stream: randomUUID(), trimmedThrough: outbox.trimmedThrough };
  await store.commit([], [{ type: 'put', key: keys.outboxMeta, value: next }]);
}

/** Whether `store` has run alone since the mirrored service last stopped (its outbox has a new identity). */
export async function ranAlone(store: Store): Promise<boolean> {
  const [outbox, mark] = await Promise.all([meta(store), record(store)]);
  return outbox !== undefined && mark?.allowed === true && mark.stream !== outbox.stream;
}
