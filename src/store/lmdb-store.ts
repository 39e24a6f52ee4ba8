// The embedded store: LMDB through lmdb-js. Reads are synchronous lookups in a
// memory map; commits run as lmdb-js async transactions, which lmdb-js
// coalesces into one OS transaction and one fsync per event turn (group
// commit). With `overlappingSync: false` a commit's promise resolves only
// after the data is flushed to disk, so a reply sent after it survives power
// loss, not only `kill -9`.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { type Database, open, type RootDatabase } from 'lmdb';
import { lmdbCommitBytesMax, lmdbCommitChecksMax, lmdbCommitWritesMax, lmdbMapSizeBytesDefault } from '../constants.ts';
import type {
  ChangeListener,
  CommitResult,
  Entry,
  RangeQuery,
  Store,
  StoreLimits,
  VersionCheck,
  Write,
} from './contract.ts';

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
  private readonly listeners = new Set<ChangeListener>();
  private lastDeliveredRevision = 0;

  constructor(options: LmdbStoreOptions) {
    if (!options.readOnly) mkdirSync(options.dataDir, { recursive: true });
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

  async commit(checks: readonly VersionCheck[], writes: readonly Write[]): Promise<CommitResult> {
    assert.ok(checks.length <= this.limits.commitChecksMax, 'commit exceeds commitChecksMax');
    assert.ok(writes.length <= this.limits.commitWritesMax, 'commit exceeds commitWritesMax');
    const result = await this.data.transaction((): CommitResult => {
      const conflictKeys = checks
        .filter((check) => (this.data.getEntry(encodeKey(check.key))?.version ?? 0) !== check.version)
        .map((check) => check.key);
      if (conflictKeys.length > 0) return { ok: false, conflictKeys };
      const revision = this.currentRevision() + 1;
      for (const write of writes) {
        if (write.type === 'put') this.data.put(encodeKey(write.key), write.value, revision);
        else this.data.remove(encodeKey(write.key));
      }
      this.meta.put(revisionKey, revision);
      return { ok: true, revision };
    });
    if (result.ok) this.deliver(result.revision, writes);
    return result;
  }

  private deliver(revision: number, writes: readonly Write[]): void {
    // Transactions resolve in the order their callbacks ran, which is revision order.
    assert.ok(revision > this.lastDeliveredRevision, `revision ${revision} delivered out of order`);
    this.lastDeliveredRevision = revision;
    for (const listener of this.listeners) {
      try {
        listener({ revision, writes });
      } catch (error) {
        // The commit is durable whatever a listener does; its caller must still hear "ok".
        process.emitWarning(`change listener failed at revision ${revision}: ${(error as Error).stack ?? error}`);
      }
    }
  }

  async revision(): Promise<number> {
    return this.currentRevision();
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.root.close();
  }
}
