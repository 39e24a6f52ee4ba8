// The migration checksum, defined so anyone can recompute it with their own
// tools: SHA-256 over, in key order, `uint32be(key length) ‖ key ‖
// uint32be(value length) ‖ value` for every key. Each chunk has its own
// SHA-256 over its keys' frames; the whole stream has one over all of them.
import { createHash, type Hash } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import type { Sha256 } from './sha256.ts';

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

/** The two length headers of one frame. */
function lengths(kv: KeyValue): [Buffer, Buffer] {
  const keyLength = Buffer.allocUnsafe(4);
  keyLength.writeUInt32BE(kv.key.length);
  const valueLength = Buffer.allocUnsafe(4);
  valueLength.writeUInt32BE(kv.value.length);
  return [keyLength, valueLength];
}

/** Feeds one key's frame to every hash given (node:crypto hashes and the resumable one). */
export function hashFrame(kv: KeyValue, hashes: readonly (Hash | Sha256)[]): void {
  const [keyLength, valueLength] = lengths(kv);
  for (const hash of hashes) {
    hash.update(keyLength);
    hash.update(kv.key);
    hash.update(valueLength);
    hash.update(kv.value);
  }
}

/** SHA-256 (hex) of the frames of `entries`, in the order given. */
export function chunkSha256(entries: readonly KeyValue[]): string {
  const hash = createHash('sha256');
  for (const kv of entries) hashFrame(kv, [hash]);
  return hash.digest('hex');
}

export function chunkEntry(index: number, entries: readonly KeyValue[]): ChunkEntry {
  return {
    index,
    firstKey: entries[0]!.key.toString('base64'),
    lastKey: entries.at(-1)!.key.toString('base64'),
    count: entries.length,
    sha256: chunkSha256(entries),
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
