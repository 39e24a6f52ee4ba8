// Micro-benchmark of the embedded store (`npm run bench:lmdb`): what a durable
// `LmdbStore.commit` costs against the keys it carries. Each committer does
// what a SKU writer does: one commit at a time, each guarded by one version
// check on its SKU record and putting that record plus order-sized values
// (msgpack, like every value the store keeps), the next commit sent once the
// last is flushed to disk. Several committers at once stand for several SKU
// writers, whose commits lmdb-js folds into one transaction and one fsync per
// event turn. Prints one table row per (puts per commit, committers): commits
// and puts per second, and P50/P99 commit latency.
//
//   npm run bench:lmdb -- --puts 1,3,64 --committers 1,64 --duration-s 2
//   taskset -c 1 npm run bench:lmdb   # on one core, as the bench suite runs the server
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { open } from 'lmdb';
import type { OrderRecord } from '../domain/types.ts';
import { keys } from '../layout.ts';
import type { Write } from './contract.ts';
import { LmdbStore } from './lmdb-store.ts';

const putsPerCommitDefault = [1, 2, 3, 4, 7, 16, 64, 256];
/** One hot SKU's writer alone, and many SKUs' writers committing at once. */
const committersDefault = [1, 64];
const durationSDefault = 2;
/** Unmeasured commits on a throwaway store first, so the first row does not carry JIT and file set-up. */
const warmUpS = 0.5;

interface Options {
  putsPerCommit: number[];
  committers: number[];
  durationS: number;
}

interface Row {
  putsPerCommit: number;
  committers: number;
  commits: number;
  seconds: number;
  latency: RecordableHistogram;
}

function positiveIntegers(text: string, flag: string): number[] {
  const values = text.split(',').map(Number);
  for (const value of values) assert.ok(Number.isSafeInteger(value) && value > 0, `${flag} takes positive integers`);
  return values;
}

function options(): Options {
  const { values } = parseArgs({
    options: { puts: { type: 'string' }, committers: { type: 'string' }, 'duration-s': { type: 'string' } },
    strict: true,
  });
  const durationS = Number(values['duration-s'] ?? durationSDefault);
  assert.ok(durationS > 0, '--duration-s takes a positive number of seconds');
  return {
    putsPerCommit: values.puts ? positiveIntegers(values.puts, '--puts') : putsPerCommitDefault,
    committers: values.committers ? positiveIntegers(values.committers, '--committers') : committersDefault,
    durationS,
  };
}

/** An order as the engine stores it, with ids of a generous length: about 300 bytes of msgpack. */
function order(committer: number, seq: number, nowMs: number): OrderRecord {
  return {
    id: `${String(committer).padStart(6, '0')}-${String(seq).padStart(12, '0')}-${'x'.repeat(64)}`,
    sku: `piggy-shirt-2026-spring-drop-m-red-${committer}`,
    qty: 1,
    userId: `customer-${String(seq % 1_000_000).padStart(8, '0')}@mail.example.com`,
    state: 'created',
    priceCents: 1999,
    createdAtMs: nowMs,
    expiresAtMs: nowMs + 900_000,
    history: [{ state: 'created', atMs: nowMs }],
    seq,
  };
}

/** One SKU writer: commit after commit until `untilMs`, each checking and rewriting its SKU record. */
async function committer(store: LmdbStore, index: number, row: Row, untilMs: number): Promise<void> {
  const skuKey = keys.sku(`bench-${index}`);
  let version = 0;
  for (let seq = 0; performance.now() < untilMs; ) {
    const nowMs = Date.now();
    const writes: Write[] = [{ type: 'put', key: skuKey, value: { sku: skuKey, reserved: seq, atMs: nowMs } }];
    while (writes.length < row.putsPerCommit) {
      const value = order(index, seq++, nowMs);
      writes.push({ type: 'put', key: keys.order(value.id), value });
    }
    const startedNs = process.hrtime.bigint();
    const result = await store.commit([{ key: skuKey, version }], writes);
    row.latency.record(Number(process.hrtime.bigint() - startedNs));
    assert.ok(result.ok, `committer ${index} conflicted with itself`);
    version = result.revision;
    row.commits++;
  }
}

function newRow(putsPerCommit: number, committers: number): Row {
  return { putsPerCommit, committers, commits: 0, seconds: 0, latency: createHistogram() };
}

/**
 * Runs the row's committers for `durationS` seconds on a fresh store, then
 * lets `inspect` read the closed store's files before they are removed.
 */
async function measure(row: Row, durationS: number, inspect: (dataDir: string) => void = () => {}): Promise<Row> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hotstock-lmdb-bench-'));
  try {
    const store = new LmdbStore({ dataDir });
    try {
      const startedMs = performance.now();
      const untilMs = startedMs + durationS * 1000;
      await Promise.all(Array.from({ length: row.committers }, (_, index) => committer(store, index, row, untilMs)));
      row.seconds = (performance.now() - startedMs) / 1000;
    } finally {
      await store.close();
    }
    inspect(dataDir);
    return row;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Bytes one stored order takes as the store encodes it, read back raw from a closed store's files. */
function storedOrderBytes(dataDir: string): number {
  const root = open({ path: dataDir, readOnly: true, maxDbs: 4 });
  try {
    const data = root.openDB<Buffer, Buffer>({
      name: 'data',
      useVersions: true,
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    for (const { value } of data.getRange({ start: Buffer.from(keys.orderPrefix), limit: 1 })) return value.length;
    throw new Error('no order was stored');
  } finally {
    root.close();
  }
}

function tableLine(row: Row): string {
  const ms = (ns: number) => (ns / 1e6).toFixed(2);
  const perS = (count: number) => Math.round(count / row.seconds).toLocaleString('en-US');
  return `| ${row.putsPerCommit} | ${row.committers} | ${perS(row.commits)} | ${perS(row.commits * row.putsPerCommit)} | ${ms(row.latency.percentile(50))} | ${ms(row.latency.percentile(99))} |`;
}

const chosen = options();
let orderBytes = 0;
await measure(newRow(3, 1), warmUpS, (dataDir) => {
  orderBytes = storedOrderBytes(dataDir);
});
process.stdout.write(
  [
    `LmdbStore durable commits (overlappingSync: false: flushed before the promise resolves), one version check each; orders of ${orderBytes} bytes as stored; ${chosen.durationS} s a row on a fresh store in ${tmpdir()}; ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`,
    '',
    '| puts per commit | committers | commits/s | puts/s | P50 commit ms | P99 commit ms |',
    '|---:|---:|---:|---:|---:|---:|',
    '',
  ].join('\n'),
);
// Rows go out as they are measured: the whole table takes a while.
for (const putsPerCommit of chosen.putsPerCommit) {
  for (const committers of chosen.committers) {
    process.stdout.write(`${tableLine(await measure(newRow(putsPerCommit, committers), chosen.durationS))}\n`);
  }
}
