// Reading the source: every key under a prefix, at one pinned revision, in
// key order (etcd sorts ranges by key bytes), one page at a time. Keys and
// values stay Buffers end to end, so any bytes survive.
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import {
  etcdCallTimeoutMs,
  migrateChunkBytesMax,
  migrateGrpcReceiveBytesMax,
  migrateKeySlabKeys,
  migrateReadAheadPages,
  migrateReadWindowKeys,
} from '../constants.ts';
import { frameBytes, type KeyValue } from './checksum.ts';

/** Thrown when etcd no longer holds the revision asked for; the CLI maps it to its documented exit code. */
export class CompactedRevisionError extends Error {
  readonly revision: number;
  constructor(revision: number, what: string) {
    super(`etcd has compacted revision ${revision}: ${what}`);
    this.revision = revision;
  }
}

export function isCompactedError(error: unknown): boolean {
  return /compacted/i.test(String((error as Error)?.message ?? error));
}

function isTooLargeError(error: unknown): boolean {
  return /RESOURCE_EXHAUSTED|larger than max/i.test(String((error as Error)?.message ?? error));
}

export function connectEtcd(endpoints: readonly string[]): Etcd3 {
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: etcdCallTimeoutMs,
    grpcOptions: {
      'grpc.max_receive_message_length': migrateGrpcReceiveBytesMax,
      'grpc.max_send_message_length': migrateGrpcReceiveBytesMax,
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + etcdCallTimeoutMs }),
  });
}

/** The end of the byte range holding exactly the keys that start with `prefix`; `\0` means "every key after". */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** etcd refuses an empty key; the empty prefix starts at `\0`, the first key there can be. */
export function rangeStart(prefix: Buffer): Buffer {
  return prefix.length === 0 ? Buffer.from([0]) : prefix;
}

/** The first key after `key` in byte order. */
export function keyAfter(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.from([0])]);
}

export interface SourceSpan {
  revision: number;
  count: number;
}

/** Pins the revision of a new migration: the store's revision now, and how many keys the prefix holds there. */
export async function pinRevision(client: Etcd3, prefix: Buffer): Promise<SourceSpan> {
  const response = await client.kv.range({
    key: rangeStart(prefix),
    range_end: prefixRangeEnd(prefix),
    count_only: true,
  });
  return { revision: Number(response.header.revision), count: Number(response.count) };
}

/** How many keys the prefix holds at `revision` (for progress and ETA on a resumed run). */
export async function countAt(client: Etcd3, prefix: Buffer, revision: number): Promise<number> {
  const response = await rangeCall(
    client,
    { key: rangeStart(prefix), range_end: prefixRangeEnd(prefix), count_only: true },
    revision,
  );
  return Number(response.count);
}

async function rangeCall(client: Etcd3, request: Parameters<Etcd3['kv']['range']>[0], revision: number) {
  try {
    return await client.kv.range({ ...request, key: rangeStart(request.key ?? Buffer.alloc(0)), revision });
  } catch (error) {
    if (isCompactedError(error)) throw new CompactedRevisionError(revision, (error as Error).message);
    throw error;
  }
}

/**
 * Up to `limit` keys in [start, end) at `revision`, cut short once they pass
 * `migrateChunkBytesMax` bytes (at least one key always). A reply too large for
 * gRPC is asked again with half the limit.
 */
export async function readPage(
  client: Etcd3,
  range: { start: Buffer; end: Buffer },
  revision: number,
  limit: number,
): Promise<{ entries: KeyValue[]; more: boolean }> {
  assert.ok(limit > 0);
  let response: Awaited<ReturnType<typeof rangeCall>>;
  try {
    response = await rangeCall(
      client,
      { key: range.start, range_end: range.end, limit, sort_order: 'Ascend', sort_target: 'Key' },
      revision,
    );
  } catch (error) {
    if (limit > 1 && isTooLargeError(error)) return readPage(client, range, revision, Math.ceil(limit / 2));
    throw error;
  }
  const entries: KeyValue[] = [];
  let bytes = 0;
  for (const kv of response.kvs) {
    // gRPC's Buffers are used as they are (no copy): a page lives only until its chunk is committed.
    const entry = { key: kv.key, value: kv.value };
    if (entries.length > 0 && bytes + frameBytes(entry) > migrateChunkBytesMax) {
      return { entries, more: true };
    }
    bytes += frameBytes(entry);
    entries.push(entry);
  }
  for (let i = 1; i < entries.length; i++) {
    assert.ok(Buffer.compare(entries[i - 1]!.key, entries[i]!.key) < 0, 'etcd returned keys out of order');
  }
  return { entries, more: response.more || entries.length < response.kvs.length };
}

/** `entries` as pages of at most `limit` keys and `migrateChunkBytesMax` bytes (at least one key each). */
function* splitPage(entries: readonly KeyValue[], limit: number): Generator<KeyValue[]> {
  let page: KeyValue[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = frameBytes(entry);
    if (page.length === limit || (page.length > 0 && bytes + size > migrateChunkBytesMax)) {
      yield page;
      page = [];
      bytes = 0;
    }
    page.push(entry);
    bytes += size;
  }
  if (page.length > 0) yield page;
}

/**
 * etcd 3.4 answers a limited range by first collecting every key from the
 * range's start to its end, so paging through a large prefix by moving only
 * the start costs O(keys left) per page: O(n²) for the whole copy. Instead
 * the keys are listed a slab at a time (keys only, `migrateKeySlabKeys` per
 * call), and each page's values are read from a range that holds exactly that
 * page's keys.
 */
async function* listPages(
  client: Etcd3,
  range: { start: Buffer; end: Buffer },
  revision: number,
  limit: number,
): AsyncGenerator<KeyValue[]> {
  // The next slab is asked for as soon as the current one arrives, so etcd
  // lists it while this one's values are read and committed.
  let next: Promise<{ keys: Buffer[]; more: boolean }> | undefined = listKeys(
    client,
    range,
    revision,
    migrateKeySlabKeys,
  );
  while (next !== undefined) {
    const slab: { keys: Buffer[]; more: boolean } = await next;
    next =
      slab.more && slab.keys.length > 0
        ? listKeys(client, { start: keyAfter(slab.keys.at(-1)!), end: range.end }, revision, migrateKeySlabKeys)
        : undefined;
    next?.catch(() => {}); // surfaced when awaited
    const slabKeys = slab.keys;
    // Values are read in windows of `migrateReadWindowKeys` (fewer, larger calls
    // cost etcd and gRPC less per key) and handed on as pages of `limit` keys.
    const windowKeys = Math.max(limit, migrateReadWindowKeys);
    for (let first = 0; first < slabKeys.length; first += windowKeys) {
      const window = slabKeys.slice(first, first + windowKeys);
      let start: Buffer = window[0]!;
      const end = keyAfter(window.at(-1)!);
      for (;;) {
        const read = await readPage(client, { start, end }, revision, windowKeys);
        if (read.entries.length === 0) break;
        for (const page of splitPage(read.entries, limit)) yield page;
        if (!read.more) break;
        start = keyAfter(read.entries.at(-1)!.key);
      }
    }
  }
}

/** Up to `limit` keys (no values) in [start, end) at `revision`; a reply too large for gRPC is asked again with half the limit. */
async function listKeys(
  client: Etcd3,
  range: { start: Buffer; end: Buffer },
  revision: number,
  limit: number,
): Promise<{ keys: Buffer[]; more: boolean }> {
  try {
    const response = await rangeCall(
      client,
      { key: range.start, range_end: range.end, limit, keys_only: true, sort_order: 'Ascend', sort_target: 'Key' },
      revision,
    );
    return { keys: response.kvs.map((kv) => kv.key), more: response.more };
  } catch (error) {
    if (limit > 1 && isTooLargeError(error)) return listKeys(client, range, revision, Math.ceil(limit / 2));
    throw error;
  }
}

/**
 * Every page of keys in [start, end) at `revision`, in key order. Up to
 * `migrateReadAheadPages` pages are read ahead while the caller works.
 */
export async function* readPages(
  client: Etcd3,
  range: { start: Buffer; end: Buffer },
  revision: number,
  limit: number,
): AsyncGenerator<KeyValue[]> {
  const pages = listPages(client, range, revision, limit);
  const ahead: Promise<IteratorResult<KeyValue[]>>[] = [];
  let finished = false;
  const fill = () => {
    while (!finished && ahead.length < migrateReadAheadPages) {
      const next = pages.next();
      next.catch(() => {}); // surfaced when awaited
      ahead.push(next);
    }
  };
  for (;;) {
    fill();
    const page = await ahead.shift()!;
    if (page.done) {
      finished = true;
      return;
    }
    yield page.value;
  }
}
