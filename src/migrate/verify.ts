// `--verify`: recompute the chunk hashes over the source and over the
// destination and compare them; where a chunk differs, compare its keys one by
// one and report every differing key.
//
// At the pinned revision the chunks are the manifest's, and the source's
// hashes must also equal the manifest's. After `--follow` applied later
// revisions, the destination reflects the source at the last applied
// revision, so that is the revision compared (chunked as the source pages fall).
import { createHash } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { checkLedger } from '../check/ledger-check.ts';
import { migrateReadWindowKeys } from '../constants.ts';
import type { Store } from '../store/contract.ts';
import type { Checkpoint } from './checkpoint.ts';
import { type ChunkEntry, chunkSha256, encodeFrames, type KeyValue } from './checksum.ts';
import type { RawDestination } from './raw-destination.ts';
import { keyAfter, prefixRangeEnd, readPages } from './source.ts';

export interface KeyDifference {
  key: Buffer;
  problem: 'missing in destination' | 'not in source' | 'value differs';
}

export interface VerifyReport {
  revision: number;
  chunks: number;
  keys: number;
  differingChunks: number;
  differences: KeyDifference[];
  /** Problems that are not one key: a manifest hash the source no longer has, ledger violations. */
  problems: string[];
  sourceSha256: string;
}

/** Keys of a and b (each in key order) that differ, merged in key order. */
export function diffEntries(source: readonly KeyValue[], destination: readonly KeyValue[]): KeyDifference[] {
  const differences: KeyDifference[] = [];
  let i = 0;
  let j = 0;
  while (i < source.length || j < destination.length) {
    const order =
      i >= source.length ? 1 : j >= destination.length ? -1 : Buffer.compare(source[i]!.key, destination[j]!.key);
    if (order < 0) differences.push({ key: source[i++]!.key, problem: 'missing in destination' });
    else if (order > 0) differences.push({ key: destination[j++]!.key, problem: 'not in source' });
    else {
      if (!source[i]!.value.equals(destination[j]!.value))
        differences.push({ key: source[i]!.key, problem: 'value differs' });
      i++;
      j++;
    }
  }
  return differences;
}

/** etcd's range end `\0` (what `prefixRangeEnd` gives when nothing bounds the prefix) means "no end". */
function isBefore(key: Buffer, end: Buffer): boolean {
  return (end.length === 1 && end[0] === 0) || Buffer.compare(key, end) < 0;
}

/** The source at one revision as one stream of keys in order, taken interval by interval. */
class SourceCursor {
  private readonly pages: AsyncGenerator<KeyValue[]>;
  private buffered: KeyValue[] = [];
  private offset = 0;
  private finished = false;

  constructor(client: Etcd3, prefix: Buffer, revision: number) {
    this.pages = readPages(client, { start: prefix, end: prefixRangeEnd(prefix) }, revision, migrateReadWindowKeys);
  }

  /** Every remaining key before `end`. */
  async takeBefore(end: Buffer): Promise<KeyValue[]> {
    const taken: KeyValue[] = [];
    for (;;) {
      while (this.offset < this.buffered.length && isBefore(this.buffered[this.offset]!.key, end)) {
        taken.push(this.buffered[this.offset++]!);
      }
      if (this.offset < this.buffered.length || this.finished) return taken;
      const next = await this.pages.next();
      if (next.done) this.finished = true;
      else {
        this.buffered = next.value;
        this.offset = 0;
      }
    }
  }

  /** The next page as it comes (empty at the end). */
  async nextPage(): Promise<KeyValue[]> {
    if (this.offset < this.buffered.length) {
      const rest = this.buffered.slice(this.offset);
      this.offset = this.buffered.length;
      return rest;
    }
    const next = await this.pages.next();
    return next.done ? [] : next.value;
  }
}

interface Interval {
  start: Buffer;
  end: Buffer;
  manifest?: ChunkEntry;
}

/** The manifest's chunks as contiguous key intervals covering the whole prefix. */
function manifestIntervals(prefix: Buffer, chunks: readonly ChunkEntry[]): Interval[] {
  const intervals: Interval[] = [];
  let start = prefix;
  for (const chunk of chunks) {
    const end = keyAfter(Buffer.from(chunk.lastKey, 'base64'));
    intervals.push({ start, end, manifest: chunk });
    start = end;
  }
  intervals.push({ start, end: prefixRangeEnd(prefix) });
  return intervals;
}

export async function verifyRaw(
  client: Etcd3,
  destination: RawDestination,
  checkpoint: Checkpoint,
  chunks: readonly ChunkEntry[],
): Promise<VerifyReport> {
  const prefix = Buffer.from(checkpoint.prefix, 'base64');
  const atPinned = checkpoint.followRevision === checkpoint.revision;
  const revision = checkpoint.followRevision;
  const report: VerifyReport = {
    revision,
    chunks: 0,
    keys: 0,
    differingChunks: 0,
    differences: [],
    problems: [],
    sourceSha256: '',
  };
  const stream = createHash('sha256');
  const compare = (interval: Interval, source: KeyValue[]) => {
    const copied = [...destination.entries(interval.start, interval.end)];
    const frames = encodeFrames(source);
    const sourceSha = createHash('sha256').update(frames).digest('hex');
    stream.update(frames);
    // The empty interval after the last chunk (or page) is checked for strays, but it is not a chunk.
    if (interval.manifest !== undefined || source.length > 0) report.chunks++;
    report.keys += source.length;
    if (interval.manifest !== undefined && interval.manifest.sha256 !== sourceSha) {
      report.problems.push(
        `chunk ${interval.manifest.index}: the source now hashes to ${sourceSha}, the manifest says ${interval.manifest.sha256}`,
      );
    }
    if (chunkSha256(copied) !== sourceSha) {
      report.differingChunks++;
      report.differences.push(...diffEntries(source, copied));
    }
  };
  const source = new SourceCursor(client, prefix, revision);
  if (atPinned) {
    for (const interval of manifestIntervals(prefix, chunks)) compare(interval, await source.takeBefore(interval.end));
  } else {
    let start: Buffer = prefix;
    for (let page = await source.nextPage(); page.length > 0; page = await source.nextPage()) {
      const pageEnd = keyAfter(page.at(-1)!.key);
      compare({ start, end: pageEnd }, page);
      start = pageEnd;
    }
    compare({ start, end: prefixRangeEnd(prefix) }, []);
  }
  report.sourceSha256 = stream.digest('hex');
  return report;
}

/**
 * Records mode: the destination holds hotstock records, not the source's
 * bytes, so the source is compared with the manifest (chunk by chunk) and the
 * destination must pass every ledger invariant `hotstock check` verifies.
 */
export async function verifyRecords(
  client: Etcd3,
  store: Store,
  checkpoint: Checkpoint,
  chunks: readonly ChunkEntry[],
): Promise<VerifyReport> {
  const prefix = Buffer.from(checkpoint.prefix, 'base64');
  const report: VerifyReport = {
    revision: checkpoint.revision,
    chunks: 0,
    keys: 0,
    differingChunks: 0,
    differences: [],
    problems: [],
    sourceSha256: '',
  };
  const stream = createHash('sha256');
  const cursor = new SourceCursor(client, prefix, checkpoint.revision);
  for (const interval of manifestIntervals(prefix, chunks)) {
    const source = await cursor.takeBefore(interval.end);
    const frames = encodeFrames(source);
    stream.update(frames);
    if (interval.manifest !== undefined) report.chunks++;
    report.keys += source.length;
    const sha = createHash('sha256').update(frames).digest('hex');
    if (interval.manifest === undefined) {
      if (source.length > 0) report.problems.push(`${source.length} source keys after the manifest's last chunk`);
    } else if (interval.manifest.sha256 !== sha || interval.manifest.count !== source.length) {
      report.differingChunks++;
      report.problems.push(
        `chunk ${interval.manifest.index}: the source hashes to ${sha}, the manifest says ${interval.manifest.sha256}`,
      );
    }
  }
  report.sourceSha256 = stream.digest('hex');
  const ledger = await checkLedger(store);
  report.problems.push(...ledger.violations.map((violation) => `ledger: ${violation}`));
  return report;
}
