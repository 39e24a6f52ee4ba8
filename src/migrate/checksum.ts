// The migration checksum, defined so anyone can recompute it with their own
// tools: SHA-256 over, in key order, `uint32be(key length) ‖ key ‖
// uint32be(value length) ‖ value` for every key. Each chunk has its own
// SHA-256 over its keys' frames; the whole stream has one over all of them.
import { createHash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';

export interface KeyValue {
  key: Buffer;
  value: Buffer;
}

/** One chunk as the manifest lists it; keys are base64. */
export interface ChunkEntry {
  index: number;
  firstKey: string;
  lastKey: string;
  count: number;
  sha256: string;
}

export interface Manifest {
  source: { endpoints: string[]; prefix: string; prefixBase64: string };
  mapping: string;
  revision: number;
  keys: number;
  bytes: number;
  chunkKeys: number;
  chunks: ChunkEntry[];
  sha256: string;
  finishedAt: string;
}

/** The frames of `entries`, in the order given, as one buffer (one hash call instead of four per key). */
export function encodeFrames(entries: readonly KeyValue[]): Buffer {
  let size = 0;
  for (const kv of entries) size += 8 + kv.key.length + kv.value.length;
  const frames = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const { key, value } of entries) {
    offset = frames.writeUInt32BE(key.length, offset);
    offset += key.copy(frames, offset);
    offset = frames.writeUInt32BE(value.length, offset);
    offset += value.copy(frames, offset);
  }
  return frames;
}

/** SHA-256 (hex) of the frames of `entries`, in the order given. */
export function chunkSha256(entries: readonly KeyValue[]): string {
  return createHash('sha256').update(encodeFrames(entries)).digest('hex');
}

/** The manifest entry of a chunk whose frames (`encodeFrames`) are given. */
export function chunkEntry(index: number, entries: readonly KeyValue[], frames: Buffer): ChunkEntry {
  return {
    index,
    firstKey: entries[0]!.key.toString('base64'),
    lastKey: entries.at(-1)!.key.toString('base64'),
    count: entries.length,
    sha256: createHash('sha256').update(frames).digest('hex'),
  };
}

export function frameBytes(kv: KeyValue): number {
  return kv.key.length + kv.value.length;
}

export function writeManifest(path: string, manifest: Manifest): void {
  // Written whole to a temporary name and renamed, so a reader never sees half a manifest.
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(temporary, path);
}
