// The data layout: every key a SKU, an order and an idempotency key imply, and
// what each operation writes. The engine's decisions, the offline checker, the
// legacy importer, the queries and the sweeper all derive their keys from this
// module; no key is spelled anywhere else.
//
//   layout                                  {version}: which layout the store holds
//   sku/<sku>                               the SKU record (catalog entry + stock ledger)
//   catalog/<product>␀<size>␀<color>␀<sku>  catalog index, ordered (product, size, color)
//   order/<id>                              the order, the unit of storage
//   sku-orders/<sku>␀<seq>                  {id, createdAtMs, expiresAtMs}: the SKU's orders in creation order
//   user-orders/<user>␀<sku>␀<seq>          {id, units}: the user's orders, and the units each holds
//   idem/<idempotency id>                   the recorded answer of a mutation other than a reservation
//   idem-expiry/<ms>␀<idempotency id>       when that record may be forgotten
//   adjustment/<sku>␀<id>                   audit trail of stock adjustments
//   sweep/<sku>                             how far the expiry sweep has read the SKU's orders (a hint)
//   cluster/members/<member id>             a live instance (etcd, under its lease): where peers reach it
//   cluster/shards/<shard>                  which instance owns a shard of SKUs (etcd, under the owner's lease);
//                                           its revision is the fence every commit of the shard's SKUs checks
//
// With a mirror (cutover/), a store also holds keys of its own that are never
// mirrored (see `isMirrored`):
//
//   outbox/<seq>                            {atMs, writes}: a commit's mirrored writes, recorded in that commit
//   outbox-meta                             {stream, trimmedThrough}: the outbox's identity and how far it was trimmed
//   standalone                              {allowed, stream}: whether the store may run without its mirror
//   mirror/<source kind>                    {stream, appliedThrough, partial}: how far this store applied the source's outbox
//   routing/config                          {defaultStore, seed}: the SKU routing's defaults (etcd only)
//   routing/sku/<sku>                       {store, moveId}: where a SKU is authoritative, when a move put it there
//   routing/move/<id>                       a move's durable state
//
// A reservation writes three keys: the order and its two index entries. Its
// idempotency key is folded into the order: a new order's id is derived from
// the caller's scope and key, so a retry finds the order itself, and the
// order's own fields are what a retry must match. The per-user limit reads the
// user's entries of one SKU (a short range) instead of keeping a counter, and
// the expiry sweep walks each SKU's orders in creation order instead of an
// expiry index. Composite keys join their parts with NUL, which ids cannot
// contain (they are printable), so a prefix for one user never runs into
// another user whose id merely starts the same way.
import { hash } from 'node:crypto';
import { holdsUnits } from './domain/order-state.ts';
import type { OrderRecord, SkuRecord } from './domain/types.ts';
import { prefixEnd, type Store, type Write } from './store/contract.ts';

/** The layout this code reads and writes; a store holding another is refused at start. */
export const layoutVersion = 2;

const sep = '\u0000';
/** Millisecond timestamps are zero-padded so they sort as numbers. */
const timestampDigits = 15;
/** Per-SKU order sequence numbers in base 36, padded so they sort as numbers (36^8 ≈ 2.8e12). */
const seqDigits = 8;
/** Outbox sequence numbers, zero-padded so they sort as numbers (Number.MAX_SAFE_INTEGER has 16 digits). */
const outboxSeqDigits = 16;
/** Characters of an idempotency id: 22 base64url characters carry 132 bits of SHA-256. */
const idempotencyIdChars = 22;
/** Digits of a shard number in its owner key (shards are counted in the hundreds at most). */
const shardDigits = 3;

function ms(value: number): string {
  return String(value).padStart(timestampDigits, '0');
}

function seqPart(seq: number): string {
  return seq.toString(36).padStart(seqDigits, '0');
}

export const keys = {
  layout: 'layout',

  skuPrefix: 'sku/',
  sku: (sku: string) => `sku/${sku}`,

  catalogPrefix: 'catalog/',
  catalog: (sku: Pick<SkuRecord, 'product' | 'size' | 'color' | 'sku'>) =>
    `catalog/${sku.product}${sep}${sku.size}${sep}${sku.color}${sep}${sku.sku}`,
  /** A prefix over the catalog index for the leading attributes given (product, size, color). */
  catalogQuery: (parts: readonly string[]) => `catalog/${parts.map((part) => part + sep).join('')}`,

  orderPrefix: 'order/',
  order: (id: string) => `order/${id}`,

  skuOrdersRoot: 'sku-orders/',
  skuOrdersPrefix: (sku: string) => `sku-orders/${sku}${sep}`,
  skuOrder: (sku: string, seq: number) => `sku-orders/${sku}${sep}${seqPart(seq)}`,

  userOrdersRoot: 'user-orders/',
  userOrdersPrefix: (userId: string) => `user-orders/${userId}${sep}`,
  userSkuOrdersPrefix: (userId: string, sku: string) => `user-orders/${userId}${sep}${sku}${sep}`,
  userOrder: (userId: string, sku: string, seq: number) => `user-orders/${userId}${sep}${sku}${sep}${seqPart(seq)}`,

  idempotencyPrefix: 'idem/',
  idempotency: (idempotencyId: string) => `idem/${idempotencyId}`,
  idempotencyExpiryPrefix: 'idem-expiry/',
  idempotencyExpiry: (expiresAtMs: number, idempotencyId: string) =>
    `idem-expiry/${ms(expiresAtMs)}${sep}${idempotencyId}`,
  /** First key after every idempotency expiry entry due at or before `nowMs`. */
  idempotencyExpiryDueEnd: (nowMs: number) => `idem-expiry/${ms(nowMs + 1)}`,

  adjustmentPrefix: 'adjustment/',
  adjustment: (sku: string, id: string) => `adjustment/${sku}${sep}${id}`,

  sweepPrefix: 'sweep/',
  sweep: (sku: string) => `sweep/${sku}`,

  outboxPrefix: 'outbox/',
  outboxEntry: (seq: number) => `outbox/${String(seq).padStart(outboxSeqDigits, '0')}`,
  outboxMeta: 'outbox-meta',
  standalone: 'standalone',
  mirrorResumePrefix: 'mirror/',
  mirrorResume: (sourceKind: string) => `mirror/${sourceKind}`,
  routingPrefix: 'routing/',
  routingConfig: 'routing/config',
  routingSkuPrefix: 'routing/sku/',
  routingSku: (sku: string) => `routing/sku/${sku}`,
  routingMovePrefix: 'routing/move/',
  routingMove: (id: string) => `routing/move/${id}`,

  clusterPrefix: 'cluster/',
  clusterMembersPrefix: 'cluster/members/',
  clusterMember: (memberId: string) => `cluster/members/${memberId}`,
  shardOwnersPrefix: 'cluster/shards/',
  shardOwner: (shard: number) => `cluster/shards/${String(shard).padStart(shardDigits, '0')}`,
} as const;

/** A `cluster/members/` value: a live instance, as it announces itself. */
export interface MemberRecord {
  id: string;
  /** Where peers send it the writes of the SKUs it owns (its advertised URL). */
  url: string;
  /** The shard count it hashes SKUs into; members that disagree cannot share SKUs. */
  shards: number;
}

/** A `cluster/shards/` value: the member that owns the shard. */
export interface ShardOwnerRecord {
  owner: string;
}

/** The shard an owner key names, or undefined when the key is not a canonical owner key. */
export function shardOfOwnerKey(key: string): number | undefined {
  const digits = key.slice(keys.shardOwnersPrefix.length);
  if (!key.startsWith(keys.shardOwnersPrefix) || !/^[0-9]+$/.test(digits)) return undefined;
  const shard = Number(digits);
  return keys.shardOwner(shard) === key ? shard : undefined;
}

/** The sequence number of an `outbox/` key. */
export function seqOfOutboxKey(key: string): number {
  return Number(key.slice(keys.outboxPrefix.length));
}

/**
 * Keys a store keeps for itself, never copied to a mirror nor compared by
 * reconcile: the layout marker (each store has its own), the outbox and the
 * mirror's resume point, the routing (it lives in etcd only), the sweep's
 * marks (hints, each store keeps its own), a records migration's checkpoint
 * (migrate/importer.ts), and distributed mode's members and shard owners
 * (leased etcd keys of live instances; a mirrored service runs no cluster).
 */
export const storeLocalPrefixes = [
  keys.outboxPrefix,
  keys.outboxMeta,
  keys.standalone,
  keys.mirrorResumePrefix,
  keys.routingPrefix,
  keys.sweepPrefix,
  'migrate/', // the importer's own keys (migrate/importer.ts)
  keys.clusterPrefix,
] as const;

/** Whether a write to `key` is recorded in the outbox and applied to the mirror. */
export function isMirrored(key: string): boolean {
  if (key === keys.layout) return false;
  for (const prefix of storeLocalPrefixes) if (key.startsWith(prefix)) return false;
  return true;
}

/**
 * The SKU a stored entry belongs to, so the store authoritative for it can be
 * named: from the key where the key names it, from the record otherwise (an
 * order, an idempotency record). Undefined for an idempotency expiry entry,
 * whose SKU is its record's.
 */
export function skuOfEntry(key: string, value: unknown): string | undefined {
  if (key.startsWith(keys.skuPrefix)) return key.slice(keys.skuPrefix.length);
  if (key.startsWith(keys.catalogPrefix)) return keyParts(key, keys.catalogPrefix).at(-1);
  if (key.startsWith(keys.skuOrdersRoot)) return keyParts(key, keys.skuOrdersRoot)[0];
  if (key.startsWith(keys.userOrdersRoot)) return keyParts(key, keys.userOrdersRoot)[1];
  if (key.startsWith(keys.adjustmentPrefix)) return keyParts(key, keys.adjustmentPrefix)[0];
  if (key.startsWith(keys.orderPrefix)) return (value as Partial<OrderRecord> | null)?.sku;
  if (key.startsWith(keys.idempotencyPrefix)) return skuOfIdempotencyRecord(value);
  return undefined;
}

/** The SKU an idempotency record's answer concerns. */
export function skuOfIdempotencyRecord(value: unknown): string | undefined {
  const result = (value as Partial<IdempotencyRecord> | null)?.result;
  if (result?.kind === 'order') return result.order?.sku;
  if (result?.kind === 'sku') return result.sku?.sku;
  return undefined;
}

/** The value of the `layout` key. */
export interface LayoutRecord {
  version: number;
}

/** A `sku-orders/` entry: enough for the expiry sweep to know when the order lapses without reading it. */
export interface SkuOrderEntry {
  id: string;
  createdAtMs: number;
  expiresAtMs: number;
}

/** A `user-orders/` entry: the order, and the units of it that count against the user's limit now. */
export interface UserOrderEntry {
  id: string;
  units: number;
}

/** What an idempotency key records for a mutation other than a reservation: the answer to replay. */
export interface IdempotencyRecord {
  /** Hash of what the request asked for; a different one under the same key is 422. */
  fingerprint: string;
  status: number;
  /** The resource the answer carried, as it was then; its version is this record's own. */
  result: { kind: 'order'; order: OrderRecord } | { kind: 'sku'; sku: SkuRecord };
  expiresAtMs: number;
}

/** An `outbox/` entry: what one commit wrote that the mirror must apply, and when. */
export interface OutboxEntry {
  atMs: number;
  writes: Write[];
}

/** The outbox's identity (a mirror's resume point names it) and how far applied entries were deleted. */
export interface OutboxMeta {
  stream: string;
  trimmedThrough: number;
}

/**
 * A mirror's resume point, written in the same commit as what it applied:
 * every entry of the outbox `stream` through `appliedThrough` is applied,
 * and of entry `partial.seq` the first `partial.offset` writes (an entry too
 * big for one commit of the mirror is applied in parts).
 */
export interface MirrorResume {
  stream: string;
  appliedThrough: number;
  partial: { seq: number; offset: number } | null;
}

export type StoreKind = 'lmdb' | 'etcd';

/** The other of the two store kinds: a cutover pairs exactly one of each. */
export function otherStoreKind(kind: StoreKind): StoreKind {
  return kind === 'lmdb' ? 'etcd' : 'lmdb';
}

/**
 * Written on each store when a service with a mirror stops cleanly: `allowed`
 * when every SKU was authoritative on this store and it held everything the
 * other store had recorded, so it may run alone; `stream` is its outbox's
 * identity then (a store that has run alone since has another).
 */
export interface StandaloneRecord {
  allowed: boolean;
  stream: string;
}

/**
 * The routing's defaults: where a SKU without a route of its own is
 * authoritative, the initial copy of that store into the mirror (`seed`: the
 * outbox stream being copied while under way, `done` after), and which two
 * stores it pairs.
 */
export interface RoutingConfig {
  defaultStore: StoreKind;
  seed: { state: 'copying'; stream: string } | { state: 'done' };
  /** The outbox identity of each store this routing pairs: another store (or a second instance's) is refused. */
  pair: Record<StoreKind, string>;
}

/** A SKU's own route: its authoritative store, and the move that put it there. */
export interface SkuRoute {
  store: StoreKind;
  moveId: string;
}

/** The audit entry of one stock adjustment. */
export interface AdjustmentRecord {
  delta: number;
  reason: string;
  atMs: number;
}

/**
 * The id an idempotency key stands for: a reservation's order id, or the key of
 * another mutation's record. Scoped to the caller, so two API keys never share one.
 */
export function idempotencyId(scope: string, key: string): string {
  return hash('sha256', `${scope}${sep}${key}`, 'base64url').slice(0, idempotencyIdChars);
}

/** The NUL-separated parts of a key after its root, e.g. a catalog entry's (product, size, color, sku). */
export function keyParts(key: string, root: string): string[] {
  return key.slice(root.length).split(sep);
}

/** The sequence number at the end of a `sku-orders/` or `user-orders/` key. */
export function seqOfKey(key: string): number {
  return Number.parseInt(key.slice(key.lastIndexOf(sep) + 1), 36);
}

/** The part of an idempotency expiry entry after its timestamp: the idempotency id. */
export function idempotencyIdOfExpiry(key: string): string {
  return key.slice(key.indexOf(sep) + 1);
}

export interface KeyValue {
  key: string;
  value: unknown;
}

/** The index entries an order implies in its current state; the checker compares them with the store. */
export function orderIndexEntries(order: OrderRecord): [KeyValue, KeyValue] {
  const bySku: SkuOrderEntry = { id: order.id, createdAtMs: order.createdAtMs, expiresAtMs: order.expiresAtMs };
  const byUser: UserOrderEntry = { id: order.id, units: holdsUnits(order.state) ? order.qty : 0 };
  return [
    { key: keys.skuOrder(order.sku, order.seq), value: bySku },
    { key: keys.userOrder(order.userId, order.sku, order.seq), value: byUser },
  ];
}

/** Where writes go: a batch's working set, an import chunk. */
export interface KeyWriter {
  put(key: string, value: unknown): void;
  delete(key: string): void;
}

/** A new order: the order and both of its index entries. */
export function writeNewOrder(writer: KeyWriter, order: OrderRecord): void {
  writer.put(keys.order(order.id), order);
  for (const entry of orderIndexEntries(order)) writer.put(entry.key, entry.value);
}

/** A changed order; its user entry only when the units it holds changed (the SKU entry never changes). */
export function writeOrderChange(writer: KeyWriter, before: OrderRecord, after: OrderRecord): void {
  writer.put(keys.order(after.id), after);
  const [, byUser] = orderIndexEntries(after);
  if (holdsUnits(before.state) !== holdsUnits(after.state)) writer.put(byUser.key, byUser.value);
}

/** A SKU record, and its catalog index entry when it is new or its attributes moved. */
export function writeSku(writer: KeyWriter, before: SkuRecord | undefined, after: SkuRecord): void {
  writer.put(keys.sku(after.sku), after);
  const catalogKey = keys.catalog(after);
  const previousKey = before && keys.catalog(before);
  if (previousKey === catalogKey) return;
  if (previousKey !== undefined) writer.delete(previousKey);
  writer.put(catalogKey, '');
}

/** A mutation's recorded answer and its expiry entry, replacing the entry of a lapsed earlier record. */
export function writeIdempotency(
  writer: KeyWriter,
  id: string,
  record: IdempotencyRecord,
  previous: IdempotencyRecord | undefined,
): void {
  if (previous !== undefined) writer.delete(keys.idempotencyExpiry(previous.expiresAtMs, id));
  writer.put(keys.idempotency(id), record);
  writer.put(keys.idempotencyExpiry(record.expiresAtMs, id), '');
}

export function writeAdjustment(writer: KeyWriter, sku: string, id: string, record: AdjustmentRecord): void {
  writer.put(keys.adjustment(sku, id), record);
}

/**
 * Most writes and version checks one operation adds to a batch, beyond the
 * SKU record (checked, and written once by the batch). What the functions
 * above write, counted; `test/layout` proves each against what a decision
 * actually writes.
 */
export const operationCosts = {
  /** The order and its two index entries; the check that the order id is new. */
  reserve: { writes: 3, checks: 1 },
  /** The order and its user entry; the order's version when it was read before the batch. */
  transition: { writes: 2, checks: 1 },
  /** The audit entry. */
  adjust: { writes: 1, checks: 0 },
  /** The catalog index entry moved: one delete, one put. */
  upsert: { writes: 2, checks: 0 },
  /** An idempotency record, its expiry entry and a lapsed predecessor's expiry entry; the record's version. */
  idempotency: { writes: 3, checks: 1 },
  /** The SKU record, once per batch. */
  skuRecord: { writes: 1, checks: 1 },
} as const;

/** The store holds another layout (or not a hotstock store): refused, never misread. */
export class LayoutMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutMismatch';
  }
}

const noUpgradeAdvice =
  'hotstock does not convert layouts in place: keep running the release that wrote this data, or start this one on an empty --data-dir (or another --etcd-prefix)';

/**
 * Checks that `store` holds this layout. An empty store gets the layout
 * marker when `create` is set (a service starting, an import beginning);
 * any other content without the marker is an earlier layout.
 */
export async function ensureLayout(store: Store, options: { create: boolean }): Promise<'ready' | 'empty'> {
  const marker = await store.get<LayoutRecord>(keys.layout);
  if (marker !== undefined) {
    const version = (marker.value as Partial<LayoutRecord> | null)?.version;
    if (version === layoutVersion) return 'ready';
    throw new LayoutMismatch(
      `this store holds data layout ${JSON.stringify(version)}; this hotstock reads layout ${layoutVersion}. ${noUpgradeAdvice}`,
    );
  }
  const [first] = await store.range({ start: '', end: prefixEnd(''), limit: 1 });
  if (first !== undefined) {
    // Another instance may have marked the store (and begun writing) between the two reads.
    if ((await store.get(keys.layout)) !== undefined) return ensureLayout(store, options);
    throw new LayoutMismatch(
      `this store holds data without a layout marker (its first key is ${JSON.stringify(first.key)}): it was written by an earlier hotstock, with data layout 1; this hotstock reads layout ${layoutVersion}. ${noUpgradeAdvice}`,
    );
  }
  if (!options.create) return 'empty';
  const record: LayoutRecord = { version: layoutVersion };
  const result = await store.commit(
    [{ key: keys.layout, version: 0 }],
    [{ type: 'put', key: keys.layout, value: record }],
  );
  // Another instance may have marked the empty store at the same moment: then it must hold this layout too.
  return result.ok ? 'ready' : ensureLayout(store, options);
}
