// The bulk copy: every key under the prefix at the pinned revision, chunk by
// chunk, each chunk committed with its checkpoint so a resumed run continues
// exactly after the last committed chunk.
import type { Etcd3 } from 'etcd3';
import { migrateCommitsInFlightMax } from '../constants.ts';
import { type Checkpoint, type Destination, describeCheckpoint } from './checkpoint.ts';
import { type ChunkEntry, chunkEntry, encodeFrames, frameBytes, type KeyValue, type Manifest } from './checksum.ts';
import type { Progress } from './progress.ts';
import { Sha256 } from './sha256.ts';
import { countAt, keyAfter, pinRevision, prefixRangeEnd, readPages } from './source.ts';

/** A refusal the operator fixes by changing the command line (exit code 2). */
export class MigrationUsageError extends Error {}

export interface CopyOptions {
  client: Etcd3;
  endpoints: string[];
  prefix: Buffer;
  mapping: string;
  chunkKeys: number;
  resume: boolean;
  /** Runs once the revision is known, before the first chunk (the legacy importer reads its prices). */
  beforeCopy?: (revision: number) => Promise<void>;
  /** On a dry run (no destination), maps a chunk's entries and returns how many the mapping skips. */
  dryRunMap?: (entries: KeyValue[]) => number;
  progress: (totalKeys: number, startKeys: number) => Progress;
}

export interface CopyResult {
  checkpoint: Checkpoint;
  /** Chunk entries, for the manifest (kept in memory on a dry run). */
  chunks: ChunkEntry[];
  /** Keys this run copied (a resumed run does not count earlier runs). */
  keysThisRun: number;
  resumed: boolean;
  durationMs: number;
}

function freshCheckpoint(options: CopyOptions, revision: number): Checkpoint {
  return {
    format: 1,
    prefix: options.prefix.toString('base64'),
    mapping: options.mapping,
    endpoints: options.endpoints,
    revision,
    chunkKeys: options.chunkKeys,
    nextChunk: 0,
    lastKey: null,
    keys: 0,
    bytes: 0,
    skipped: 0,
    stream: new Sha256().save(),
    done: false,
    followRevision: revision,
  };
}

/** Refuses to continue a migration of another prefix or mapping into the same directory. */
export function checkSameMigration(existing: Checkpoint, options: { prefix: Buffer; mapping: string }): void {
  const prefix = options.prefix.toString('base64');
  if (existing.prefix !== prefix || existing.mapping !== options.mapping) {
    const wanted = `prefix ${JSON.stringify(options.prefix.toString('utf8'))}, mapping ${options.mapping}`;
    throw new MigrationUsageError(
      `the data directory holds a migration of ${describeCheckpoint(existing)}; this command asks for ${wanted}. ` +
        'Use the same --prefix and mapping to resume it, or a new --data-dir for a new migration',
    );
  }
}

/** Copies (or, without `destination`, only reads and hashes: a dry run). */
export async function bulkCopy(destination: Destination | undefined, options: CopyOptions): Promise<CopyResult> {
  const startedAt = performance.now();
  const existing = await destination?.checkpoint();
  let checkpoint: Checkpoint;
  if (existing !== undefined) {
    checkSameMigration(existing, options);
    if (!existing.done && !options.resume) {
      throw new MigrationUsageError(
        `the data directory holds an unfinished migration (${existing.keys} keys in ${existing.nextChunk} chunks, ` +
          `${describeCheckpoint(existing)}); pass --resume to continue it`,
      );
    }
    checkpoint = existing;
  } else {
    const pinned = await pinRevision(options.client, options.prefix);
    checkpoint = freshCheckpoint(options, pinned.revision);
    // The pinned revision is durable before the first chunk, so a crash now resumes at the same revision.
    await destination?.saveCheckpoint(checkpoint);
  }
  const chunks = destination ? await destination.chunks() : [];
  const resumed = existing !== undefined;
  if (checkpoint.done) return { checkpoint, chunks, keysThisRun: 0, resumed, durationMs: 0 };

  await options.beforeCopy?.(checkpoint.revision);
  const total = await countAt(options.client, options.prefix, checkpoint.revision);
  const progress = options.progress(total, checkpoint.keys);
  const stream = Sha256.restore(checkpoint.stream);
  const start = checkpoint.lastKey === null ? options.prefix : keyAfter(Buffer.from(checkpoint.lastKey, 'base64'));
  const range = { start, end: prefixRangeEnd(options.prefix) };
  let keysThisRun = 0;
  // Raw chunks may commit while the next ones are read and hashed: LMDB applies
  // them in order, and each checks that its predecessor committed. Records
  // chunks read what the previous chunk wrote, so they commit one at a time.
  const commitsInFlightMax = destination?.kind === 'raw' ? migrateCommitsInFlightMax : 1;
  const inFlight: Promise<unknown>[] = [];
  try {
    for await (const entries of readPages(options.client, range, checkpoint.revision, checkpoint.chunkKeys)) {
      const frames = encodeFrames(entries);
      const chunk = chunkEntry(checkpoint.nextChunk, entries, frames);
      stream.update(frames);
      let bytes = 0;
      for (const kv of entries) bytes += frameBytes(kv);
      const next: Checkpoint = {
        ...checkpoint,
        nextChunk: chunk.index + 1,
        lastKey: chunk.lastKey,
        keys: checkpoint.keys + entries.length,
        bytes: checkpoint.bytes + bytes,
        stream: stream.save(),
      };
      if (destination === undefined) {
        checkpoint = { ...next, skipped: next.skipped + (options.dryRunMap?.(entries) ?? 0) };
        chunks.push(chunk);
        progress.update(checkpoint.keys, checkpoint.bytes);
      } else if (commitsInFlightMax === 1) {
        const { skipped } = await destination.commitChunk(entries, chunk, next);
        checkpoint = { ...next, skipped: next.skipped + skipped };
        progress.update(checkpoint.keys, checkpoint.bytes);
      } else {
        const committed = destination.commitChunk(entries, chunk, next);
        committed.then(() => progress.update(next.keys, next.bytes)).catch(() => {}); // surfaced when awaited
        inFlight.push(committed);
        checkpoint = next;
        if (inFlight.length >= commitsInFlightMax) await inFlight.shift();
      }
      keysThisRun += entries.length;
    }
    await Promise.all(inFlight);
  } finally {
    progress.stop();
  }
  checkpoint = { ...checkpoint, done: true };
  await destination?.saveCheckpoint(checkpoint);
  if (destination) chunks.splice(0, chunks.length, ...(await destination.chunks()));
  return { checkpoint, chunks, keysThisRun, resumed, durationMs: performance.now() - startedAt };
}

export function buildManifest(checkpoint: Checkpoint, chunks: ChunkEntry[]): Manifest {
  const prefix = Buffer.from(checkpoint.prefix, 'base64');
  return {
    source: { endpoints: checkpoint.endpoints, prefix: prefix.toString('utf8'), prefixBase64: checkpoint.prefix },
    mapping: checkpoint.mapping,
    revision: checkpoint.revision,
    keys: checkpoint.keys,
    bytes: checkpoint.bytes,
    chunkKeys: checkpoint.chunkKeys,
    chunks,
    sha256: Sha256.restore(checkpoint.stream).digestHex(),
    finishedAt: new Date().toISOString(),
  };
}
