// The embedded store: LMDB through lmdb-js. Reads are synchronous lookups in a
// memory map. A commit is a block of lmdb-js conditional writes: its version
// checks are nested `ifVersion` conditions and its writes run inside them, all
// in lmdb-js's write thread (no callback into the JavaScript thread while the
// transaction is open). lmdb-js applies writes in the order they were issued
// and coalesces every commit issued while one transaction flushes into the
// next (group commit). With `overlappingSync: false` a commit's promise
// resolves only after the data is flushed to disk, so a reply sent after it
// survives power loss, not only `kill -9`.
//
// Because commits apply in issue order, the store numbers them when they are
// issued: `commit()` says at once which revision its commit will be, so a
// writer may issue the next commit, checked against that revision, before
// this one lands. A failed commit burns its number; revisions stay strictly
// increasing, with gaps. Numbering in memory needs one writing process per
// directory, which a lock file ensures (writer-lock.ts).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { type Database, open, type RootDatabase } from 'lmdb';
import { lmdbCommitBytesMax, lmdbCommitChecksMax, lmdbCommitWritesMax, lmdbMapSizeBytesDefault } from '../constants.ts';
import type {
  ChangeListener,
  CommitResult,
  Entry,
  PendingCommit,
  RangeQuery,
  Store,
  StoreLimits,
  VersionCheck,
  Write,
} from './contract.ts';
import { acquireWriterLock } from './writer-lock.ts';

export interface LmdbStoreOptions {
  dataDir: string;
  mapSizeBytes?: number;
  /** Open for reading only (the offline checker): no writes, no lock on writers. */
  readOnly?: boolean;
}

const revisionKey = 'revision';

function encodeKey(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

function decodeKey(key: unknown): string {
  assert.ok(Buffer.isBuffer(key) || key instanceof Uint8Array, 'binary key expected');
  return Buffer.from(key).toString('utf8');
}

export class LmdbStore implements Store {
  readonly kind = 'lmdb' as const;
  readonly limits: StoreLimits = {
    commitChecksMax: lmdbCommitChecksMax,
    commitWritesMax: lmdbCommitWritesMax,
    commitBytesMax: lmdbCommitBytesMax,
  };
  private readonly root: RootDatabase;
  private readonly data: Database<unknown, Buffer>;
  private readonly meta: Database<number, string>;
  private readonly subscriptions = new Set<{ prefix: string; listener: ChangeListener }>();
  private lastDeliveredRevision = 0;
  /** The revision the last issued commit got. */
  private issuedRevision = 0;
  /** Every revision up to this one has settled and, if it applied, been delivered. */
  private sequencedRevision = 0;
  /** Settled commits not delivered yet, by revision: their writes, or null when they failed. */
  private readonly settled = new Map<number, readonly Write[] | null>();
  private readonly releaseLock: () => void;

  constructor(options: LmdbStoreOptions) {
    if (!options.readOnly) mkdirSync(options.dataDir, { recursive: true });
    this.releaseLock = options.readOnly ? () => {} : acquireWriterLock(options.dataDir);
    this.root = open({
      path: options.dataDir,
      // Always a directory, even when its name has a dot (lmdb-js would take `a.b` for a file).
      noSubdir: false,
      maxDbs: 4,
      mapSize: options.mapSizeBytes ?? lmdbMapSizeBytesDefault,
      // Durability: resolve commits only after fsync, and never skip syncing.
      overlappingSync: false,
      noSync: false,
      noMetaSync: false,
      // Group commit: every write issued in one event turn shares a transaction.
      eventTurnBatching: true,
      commitDelay: 0,
      compression: false,
      readOnly: options.readOnly ?? false,
    });
    this.data = this.root.openDB<unknown, Buffer>({
      name: 'data',
      useVersions: true,
      keyEncoding: 'binary',
      encoding: 'msgpack',
    });
    this.meta = this.root.openDB<number, string>({ name: 'meta', encoding: 'msgpack' });
    this.lastDeliveredRevision = this.currentRevision();
    this.issuedRevision = this.lastDeliveredRevision;
    this.sequencedRevision = this.lastDeliveredRevision;
  }

  private currentRevision(): number {
    return this.meta.get(revisionKey) ?? 0;
  }

  private entry<V>(key: string): Entry<V> | undefined {
    const found = this.data.getEntry(encodeKey(key));
    if (found === undefined) return undefined;
    assert.ok(typeof found.version === 'number' && found.version > 0, `key ${key} has no version`);
    return { key, value: found.value as V, version: found.version };
  }

  async get<V = unknown>(key: string): Promise<Entry<V> | undefined> {
    return this.entry<V>(key);
  }

  async getMany<V = unknown>(keys: readonly string[]): Promise<(Entry<V> | undefined)[]> {
    // Synchronous reads in one turn all see the same committed snapshot.
    return keys.map((key) => this.entry<V>(key));
  }

  async range<V = unknown>(query: RangeQuery): Promise<Entry<V>[]> {
    return this.rangeNow<V>(query);
  }

  async rangeMany<V = unknown>(queries: readonly RangeQuery[]): Promise<Entry<V>[][]> {
    // Synchronous reads in one turn all see the same committed snapshot.
    return queries.map((query) => this.rangeNow<V>(query));
  }

  private rangeNow<V>(query: RangeQuery): Entry<V>[] {
    assert.ok(query.limit > 0, 'range limit must be positive');
    const entries: Entry<V>[] = [];
    const rows = this.data.getRange({
      start: encodeKey(query.start),
      end: encodeKey(query.end),
      limit: query.limit,
      versions: true,
    });
    for (const row of rows) {
      entries.push({ key: decodeKey(row.key), value: row.value as V, version: row.version as number });
    }
    return entries;
  }

  commit(checks: readonly VersionCheck[], writes: readonly Write[]): PendingCommit {
    // Over the limits is the caller's defect: refused whole (as a rejection, like any failed commit), nothing issued.
    if (checks.length > this.limits.commitChecksMax || writes.length > this.limits.commitWritesMax) {
      return Promise.reject(
        new assert.AssertionError({
          message: `commit of ${checks.length} checks and ${writes.length} writes exceeds the store's limits`,
        }),
      );
    }
    const revision = ++this.issuedRevision;
    let conditions: Promise<boolean>[];
    try {
      conditions = this.issue(checks, writes, revision);
    } catch (error) {
      // Nothing was queued (a value lmdb-js could not encode): the number is passed over.
      conditions = [Promise.reject(error)];
    }
    const pending = this.settle(checks, writes, revision, conditions) as PendingCommit;
    pending.revision = revision;
    return pending;
  }

  /**
   * Issues the writes inside one condition block per check, nested, so they
   * apply only if every check holds; returns each condition's outcome.
   */
  private issue(checks: readonly VersionCheck[], writes: readonly Write[], revision: number): Promise<boolean>[] {
    const outcomes: Promise<boolean>[] = [];
    const apply = () => {
      for (const write of writes) {
        if (write.type === 'put') this.data.put(encodeKey(write.key), write.value, revision);
        else this.data.remove(encodeKey(write.key));
      }
      this.meta.put(revisionKey, revision);
    };
    // Innermost first: each block wraps the next, the last wraps the writes.
    let block = apply;
    for (let i = checks.length - 1; i >= 0; i--) {
      const check = checks[i]!;
      const inner = block;
      block = () => {
        const key = encodeKey(check.key);
        outcomes.push(
          check.version === 0 ? this.data.ifNoExists(key, inner) : this.data.ifVersion(key, check.version, inner),
        );
      };
    }
    // With no check the writes still form one block, so they apply together.
    if (checks.length === 0) outcomes.push(this.data.batch(apply));
    else block();
    return outcomes;
  }

  private async settle(
    checks: readonly VersionCheck[],
    writes: readonly Write[],
    revision: number,
    conditions: Promise<boolean>[],
  ): Promise<CommitResult> {
    let held: boolean;
    try {
      held = (await Promise.all(conditions)).every(Boolean);
    } catch (error) {
      this.settleDelivery(revision, null);
      throw error;
    }
    this.settleDelivery(revision, held ? writes : null);
    if (held) return { ok: true, revision };
    // A later block is not evaluated once an outer one fails, so the keys that moved are read now.
    const conflictKeys = checks
      .filter((check) => (this.data.getEntry(encodeKey(check.key))?.version ?? 0) !== check.version)
      .map((check) => check.key);
    return { ok: false, conflictKeys };
  }

  /** Records how a commit settled and delivers every commit now settled, in revision order. */
  private settleDelivery(revision: number, writes: readonly Write[] | null): void {
    this.settled.set(revision, writes);
    while (this.settled.has(this.sequencedRevision + 1)) {
      const next = ++this.sequencedRevision;
      const applied = this.settled.get(next)!;
      this.settled.delete(next);
      // A failed commit's number is passed over, not delivered.
      if (applied !== null) this.deliver(next, applied);
    }
  }

  private deliver(revision: number, writes: readonly Write[]): void {
    assert.ok(revision > this.lastDeliveredRevision, `revision ${revision} delivered out of order`);
    this.lastDeliveredRevision = revision;
    for (const { prefix, listener } of this.subscriptions) {
      const under = prefix === '' ? writes : writes.filter((write) => write.key.startsWith(prefix));
      if (under.length === 0) continue;
      try {
        listener({ revision, writes: under });
      } catch (error) {
        // The commit is durable whatever a listener does; its caller must still hear "ok".
        process.emitWarning(`change listener failed at revision ${revision}: ${(error as Error).stack ?? error}`);
      }
    }
  }

  async revision(): Promise<number> {
    return this.currentRevision();
  }

  subscribe(prefix: string, listener: ChangeListener): () => void {
    const subscription = { prefix, listener };
    this.subscriptions.add(subscription);
    return () => this.subscriptions.delete(subscription);
  }

  async close(): Promise<void> {
    this.subscriptions.clear();
    await this.root.close();
    this.releaseLock();
  }
}
