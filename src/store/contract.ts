// The store contract: the one interface the engine, the HTTP reads and the
// offline checker use, implemented by the embedded LMDB store and (in
// distributed mode) etcd. Every implementation must pass
// test/conformance/store-conformance.ts.
//
// Keys are strings ordered by their UTF-8 bytes. Values are JSON-compatible
// data (the store picks the encoding). Every key carries a `version`: the store
// revision of the commit that last wrote it (etcd's mod_revision). Version 0
// means "absent", so a check `{key, version: 0}` asserts the key does not exist.

export interface Entry<V = unknown> {
  key: string;
  value: V;
  /** Revision of the commit that last wrote this key; always > 0. */
  version: number;
}

export type Write = { type: 'put'; key: string; value: unknown } | { type: 'delete'; key: string };

/** A guard on a commit: `key` must be at exactly `version` (0 = absent). */
export interface VersionCheck {
  key: string;
  version: number;
}

/** A failed check is a result, not an exception: the caller re-reads and re-decides. */
export type CommitResult = { ok: true; revision: number } | { ok: false; conflictKeys: string[] };

/**
 * A commit as issued. A store that applies commits in the order they are
 * issued (the embedded store) says at once which revision it will be if it
 * applies, so a caller may issue another commit, checked against that
 * revision, before this one lands; other stores leave `revision` unset.
 */
export type PendingCommit = Promise<CommitResult> & { revision?: number };

/** Keys in [start, end), ascending, at most `limit` of them. */
export interface RangeQuery {
  start: string;
  end: string;
  limit: number;
}

/** What a commit changed, as delivered by the change feed. */
export interface CommittedChange {
  revision: number;
  writes: readonly Write[];
}

export type ChangeListener = (change: CommittedChange) => void;

/**
 * The change feed could not deliver some commits and never will (etcd
 * compacted the revisions the feed was about to resume from). The feed goes
 * on after the gap; a subscriber that keeps state from it must reload it.
 */
export interface ChangeFeedGap {
  /** The first revision the feed could not deliver. */
  fromRevision: number;
  /** The feed resumes after this revision. */
  resumedAfterRevision: number;
  reason: string;
}

export type GapListener = (gap: ChangeFeedGap) => void;

/** Codes (from the error catalogue) a store failure can carry to the client. */
export type StoreFailureCode = 'backend_unavailable' | 'backend_no_space' | 'owner_unavailable';

/**
 * A store failure the client should hear about precisely: the backend is
 * unreachable (or its breaker is open), or it is out of space. Any other
 * rejection from a store is reported as `store_unavailable`.
 */
export class StoreFailure extends Error {
  readonly code: StoreFailureCode;
  readonly retryAfterSeconds: number;

  constructor(code: StoreFailureCode, message: string, retryAfterSeconds: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreFailure';
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A commit refused because this instance does not own the SKU it writes (in
 * distributed mode, see cluster/fenced-store.ts): refused before it was
 * sent, or by etcd's compare on the ownership key. Either way nothing was
 * applied, so the operations may be sent to the SKU's owner instead.
 */
export class FenceRefusal extends StoreFailure {
  constructor(message: string, retryAfterSeconds: number) {
    super('owner_unavailable', message, retryAfterSeconds);
    this.name = 'FenceRefusal';
  }
}

export interface StoreLimits {
  /** Version checks one commit may carry (etcd: 128 compares per txn). */
  commitChecksMax: number;
  /** Writes one commit may carry (etcd: 128 operations per txn). */
  commitWritesMax: number;
  /** Bytes of keys and values one commit may carry (etcd: 1.5 MiB per request). */
  commitBytesMax: number;
}

export interface Store {
  readonly kind: 'lmdb' | 'etcd';
  readonly limits: StoreLimits;
  get<V = unknown>(key: string): Promise<Entry<V> | undefined>;
  /** Point reads of several keys at one consistent revision, in the order asked. */
  getMany<V = unknown>(keys: readonly string[]): Promise<(Entry<V> | undefined)[]>;
  range<V = unknown>(query: RangeQuery): Promise<Entry<V>[]>;
  /** Several range reads at one consistent revision, in the order asked. */
  rangeMany<V = unknown>(queries: readonly RangeQuery[]): Promise<Entry<V>[][]>;
  /**
   * Applies every write if every check holds, atomically and durably (flushed to
   * disk before the promise resolves); otherwise applies nothing and names the
   * keys whose checks failed. Rejects only when the store itself fails.
   */
  commit(checks: readonly VersionCheck[], writes: readonly Write[]): PendingCommit;
  /** The revision of the latest durable commit (0 for an empty store). */
  revision(): Promise<number>;
  /**
   * Calls `listener` for every commit after this call that writes a key
   * starting with `prefix` ('' for every key), with those writes only, in
   * revision order, once it is durable, including commits made by other
   * processes where the backend can see them. Subscriptions to different
   * prefixes are not ordered against each other. When the backend loses
   * commits the feed cannot deliver (a compacted etcd revision), `onGap`
   * hears of it before the feed goes on. Returns the function that stops
   * the feed.
   */
  subscribe(prefix: string, listener: ChangeListener, onGap?: GapListener): () => void;
  close(): Promise<void>;
}

const codePointMax = 0x10ffff;

/**
 * The end key that makes `range` cover exactly the keys starting with `prefix`.
 *
 * Keys order by UTF-8 bytes, which is code point order, so the end is the
 * prefix with its last code point incremented (skipping the surrogate range,
 * which UTF-8 cannot encode); trailing U+10FFFF, which has no successor, is
 * dropped first. Lone surrogates count as U+FFFD, as `Buffer.from` encodes
 * them. No string follows every key, so for `''` (or a prefix of only
 * U+10FFFF) the end is U+10FFFF: that misses only keys starting with U+10FFFF,
 * a noncharacter.
 */
export function prefixEnd(prefix: string): string {
  // The common case, on every per-user range of a reservation: a well-formed
  // prefix ending in a BMP character (the key layout's NUL separator).
  const last = prefix.charCodeAt(prefix.length - 1);
  if (last < 0xffff && (last < 0xd800 || last > 0xdfff) && prefix.isWellFormed()) {
    return prefix.slice(0, -1) + String.fromCharCode(last === 0xd7ff ? 0xe000 : last + 1);
  }
  const points = Array.from(prefix, (char) => {
    const point = char.codePointAt(0)!;
    return point >= 0xd800 && point <= 0xdfff ? 0xfffd : point;
  });
  while (points.length > 0) {
    const last = points.pop()!;
    if (last === codePointMax) continue;
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    return points.map((point) => String.fromCodePoint(point)).join('') + String.fromCodePoint(next);
  }
  return String.fromCodePoint(codePointMax);
}

/** Walks every entry under `prefix` in key order, one page of `pageEntries` at a time. */
export async function* scanPrefix<V = unknown>(
  store: Store,
  prefix: string,
  pageEntries: number,
): AsyncGenerator<Entry<V>[]> {
  const end = prefixEnd(prefix);
  let start = prefix;
  for (;;) {
    const page = await store.range<V>({ start, end, limit: pageEntries });
    if (page.length > 0) yield page;
    if (page.length < pageEntries) return;
    start = `${page.at(-1)!.key}\u0000`;
  }
}

/** Bytes a commit carries, as the store limits count them. */
export function commitBytes(writes: readonly Write[]): number {
  let bytes = 0;
  for (const write of writes) {
    bytes += Buffer.byteLength(write.key);
    if (write.type === 'put') bytes += Buffer.byteLength(JSON.stringify(write.value));
  }
  return bytes;
}
