// The migration checkpoint: where a migration stands, written in the same
// atomic, durable commit as the chunk (or followed change) it describes, so a
// restart after any crash continues exactly after the last committed work.
import type { ChunkEntry, KeyValue } from './checksum.ts';
import type { Sha256State } from './sha256.ts';

export interface Checkpoint {
  format: 1;
  /** The source prefix, base64 (any bytes). */
  prefix: string;
  /** 'raw', 'legacy', or 'transform:<sha256 of the module file>'. */
  mapping: string;
  endpoints: string[];
  /** The pinned revision every chunk was read at. */
  revision: number;
  chunkKeys: number;
  /** Index the next chunk gets. */
  nextChunk: number;
  /** The last key copied, base64; null before the first chunk. */
  lastKey: string | null;
  keys: number;
  bytes: number;
  /** Keys the mapping skipped (legacy importer, `--transform`); 0 in raw mode. */
  skipped: number;
  /** The whole-stream SHA-256 so far, as a resumable state. */
  stream: Sha256State;
  /** The bulk copy has read every key under the prefix at `revision`. */
  done: boolean;
  /** The last etcd revision `--follow` applied (starts at `revision`). */
  followRevision: number;
}

/** A change seen by `--follow`: a put (value) or a delete (no value). */
export interface Change {
  key: Buffer;
  value: Buffer | undefined;
}

/** Where a migration writes: the chunk and its checkpoint, atomically and durably. */
export interface Destination {
  readonly kind: 'raw' | 'records';
  checkpoint(): Promise<Checkpoint | undefined>;
  chunks(): Promise<ChunkEntry[]>;
  /** Writes the chunk's keys, its manifest entry and `checkpoint` in one durable commit. */
  commitChunk(entries: readonly KeyValue[], chunk: ChunkEntry, checkpoint: Checkpoint): Promise<{ skipped: number }>;
  /** Writes only the checkpoint (the bulk copy's end, a first checkpoint). */
  saveCheckpoint(checkpoint: Checkpoint): Promise<void>;
  close(): Promise<void>;
}

export function describeCheckpoint(checkpoint: Checkpoint): string {
  const prefix = Buffer.from(checkpoint.prefix, 'base64').toString('utf8');
  return `prefix ${JSON.stringify(prefix)}, mapping ${checkpoint.mapping}, revision ${checkpoint.revision}`;
}
