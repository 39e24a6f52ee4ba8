// Raw mode's destination: keys and values byte-exact, in two databases of the
// data directory's LMDB environment (the store's own `data` and `meta` stay
// untouched): `migrate-raw` (binary keys -> binary values) and `migrate-meta`
// (the checkpoint and the manifest's chunk entries). A chunk, its manifest
// entry and the checkpoint are written in one LMDB transaction, and the
// transaction's promise resolves only after fsync.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { type Database, open, type RootDatabase } from 'lmdb';
import { lmdbMapSizeBytesDefault, migrateRawKeyBytesMax } from '../constants.ts';
import type { Change, Checkpoint, Destination } from './checkpoint.ts';
import type { ChunkEntry, KeyValue } from './checksum.ts';

const checkpointKey = 'checkpoint';
const chunkKeyPrefix = 'chunk/';
const chunkIndexDigits = 10;

function chunkKey(index: number): string {
  return `${chunkKeyPrefix}${String(index).padStart(chunkIndexDigits, '0')}`;
}

export class RawKeyTooLongError extends Error {}

function checkKey(key: Buffer): void {
  if (key.length > migrateRawKeyBytesMax) {
    throw new RawKeyTooLongError(
      `key ${key.toString('base64')} (base64) is ${key.length} bytes; the embedded store holds keys of at most ${migrateRawKeyBytesMax} bytes`,
    );
  }
}

export class RawDestination implements Destination {
  readonly kind = 'raw' as const;
  private readonly root: RootDatabase;
  private readonly raw: Database<Buffer, Buffer>;
  private readonly meta: Database<unknown, string>;

  constructor(dataDir: string, options: { readOnly?: boolean } = {}) {
    if (!options.readOnly) mkdirSync(dataDir, { recursive: true });
    // The same environment options as the store (src/store/lmdb-store.ts): durable commits.
    this.root = open({
      path: dataDir,
      noSubdir: false,
      maxDbs: 4,
      mapSize: lmdbMapSizeBytesDefault,
      overlappingSync: false,
      noSync: false,
      noMetaSync: false,
      eventTurnBatching: true,
      commitDelay: 0,
      compression: false,
      readOnly: options.readOnly ?? false,
    });
    this.raw = this.root.openDB<Buffer, Buffer>({ name: 'migrate-raw', keyEncoding: 'binary', encoding: 'binary' });
    this.meta = this.root.openDB<unknown, string>({ name: 'migrate-meta', encoding: 'json' });
  }

  async checkpoint(): Promise<Checkpoint | undefined> {
    return this.meta.get(checkpointKey) as Checkpoint | undefined;
  }

  async chunks(): Promise<ChunkEntry[]> {
    const chunks: ChunkEntry[] = [];
    for (const { value } of this.meta.getRange({ start: chunkKeyPrefix, end: `${chunkKeyPrefix}~` })) {
      chunks.push(value as ChunkEntry);
    }
    for (const [i, chunk] of chunks.entries()) assert.equal(chunk.index, i, 'manifest chunks are contiguous');
    return chunks;
  }

  /**
   * Several chunks may be in flight at once; LMDB runs their transactions in
   * the order they were issued. Each transaction checks that the checkpoint it
   * finds is its predecessor's, so a chunk never commits after one that failed.
   */
  async commitChunk(entries: readonly KeyValue[], chunk: ChunkEntry, checkpoint: Checkpoint): Promise<{ skipped: 0 }> {
    for (const { key } of entries) checkKey(key);
    assert.equal(checkpoint.nextChunk, chunk.index + 1);
    await this.root.transaction(() => {
      const before = this.meta.get(checkpointKey) as Checkpoint | undefined;
      if (before?.nextChunk !== chunk.index) {
        throw new Error(`chunk ${chunk.index} follows chunk ${(before?.nextChunk ?? 0) - 1}, which did not commit`);
      }
      for (const { key, value } of entries) this.raw.put(key, value);
      this.meta.put(chunkKey(chunk.index), chunk);
      this.meta.put(checkpointKey, checkpoint);
    });
    return { skipped: 0 };
  }

  async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.root.transaction(() => {
      this.meta.put(checkpointKey, checkpoint);
    });
  }

  /** Applies followed changes and the checkpoint that records their revision, in one durable commit. */
  async applyChanges(changes: readonly Change[], checkpoint: Checkpoint): Promise<void> {
    for (const { key } of changes) checkKey(key);
    await this.root.transaction(() => {
      for (const { key, value } of changes) {
        if (value === undefined) this.raw.remove(key);
        else this.raw.put(key, value);
      }
      this.meta.put(checkpointKey, checkpoint);
    });
  }

  /** Keys in [start, end) in byte order, for `--verify` and tests; etcd's end `\0` means no upper bound. */
  *entries(start: Buffer, end: Buffer): Generator<KeyValue> {
    const unbounded = end.length === 1 && end[0] === 0;
    const range = this.raw.getRange(unbounded ? { start } : { start, end });
    for (const { key, value } of range) yield { key: Buffer.from(key), value: Buffer.from(value) };
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
