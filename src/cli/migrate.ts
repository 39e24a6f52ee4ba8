// `hotstock migrate`: copy every key under an etcd prefix into the data
// directory at one pinned revision, chunk by chunk (resumable after any crash),
// with a checksum manifest; optionally verify the copy and follow later changes.
//
// Exit codes (exit-codes.ts): 0 done (or verified equal); 1 failed, or
// --verify found a difference; 2 a bad flag or a data directory holding
// another migration; 3 etcd compacted a revision the migration needs.
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Etcd3 } from 'etcd3';
import {
  migrateChunkKeysDefault,
  migrateChunkKeysMax,
  migrateVerifyKeysPrintedMax,
  reservationTtlMsDefault,
  reservationTtlMsMax,
  reservationTtlMsMin,
} from '../constants.ts';
import type { Checkpoint, Destination } from '../migrate/checkpoint.ts';
import { writeManifest } from '../migrate/checksum.ts';
import { buildManifest, bulkCopy, type CopyResult, MigrationUsageError } from '../migrate/copy.ts';
import { follow } from '../migrate/follow.ts';
import type { RecordMapper } from '../migrate/importer.ts';
import { legacyMapper, legacyPrices } from '../migrate/legacy.ts';
import { createProgress, formatBytes, formatDuration } from '../migrate/progress.ts';
import { RawDestination } from '../migrate/raw-destination.ts';
import { mapEntries, RecordsDestination } from '../migrate/records-destination.ts';
import { CompactedRevisionError, connectEtcd, prefixRangeEnd, readPages } from '../migrate/source.ts';
import { loadTransform } from '../migrate/transform.ts';
import { type VerifyReport, verifyRaw, verifyRecords } from '../migrate/verify.ts';
import { exitCodes as migrateExitCodes } from './exit-codes.ts';
import { addFlags, endpointList, type Flag, integer } from './flags.ts';

interface MigrateOptions {
  etcdEndpoints: string[];
  prefix: string;
  dataDir: string;
  chunkSize: number;
  resume?: boolean;
  verify?: boolean;
  follow?: boolean;
  transform?: string;
  mapping: 'raw' | 'legacy';
  legacy?: boolean;
  manifest?: string;
  dryRun?: boolean;
  reservationTtlMs: number;
}

/** Every `migrate` flag; each has its environment twin. */
const migrateFlags: readonly Flag[] = [
  {
    name: 'etcd-endpoints',
    arg: 'value',
    help: 'comma-separated etcd client URLs',
    parse: endpointList,
    default: ['http://127.0.0.1:2379'],
    defaultHelp: 'http://127.0.0.1:2379',
  },
  { name: 'prefix', arg: 'value', help: 'copy the keys that start with this (UTF-8) prefix', default: '' },
  { name: 'data-dir', arg: 'value', help: 'directory of the embedded LMDB store to write', default: './data' },
  {
    name: 'chunk-size',
    arg: 'value',
    help: 'keys per chunk (one range read and one commit)',
    parse: integer(1, migrateChunkKeysMax),
    default: migrateChunkKeysDefault,
  },
  { name: 'resume', help: 'continue the unfinished migration in --data-dir' },
  { name: 'verify', help: 'after copying, compare source and destination chunk by chunk' },
  { name: 'follow', help: 'after copying, apply later changes from an etcd watch until stopped' },
  {
    name: 'mapping',
    arg: 'value',
    help: 'raw: bytes as they are; legacy: the legacy shirt layout',
    choices: ['raw', 'legacy'],
    default: 'raw',
  },
  { name: 'legacy', help: 'same as --mapping legacy' },
  { name: 'transform', arg: 'value', help: 'module mapping each source key/value to a hotstock record (or null)' },
  { name: 'manifest', arg: 'value', help: 'where to write the JSON manifest (default: DIR/migrate-manifest.json)' },
  { name: 'dry-run', help: 'read and checksum the source; write nothing' },
  {
    name: 'reservation-ttl-ms',
    arg: 'value',
    help: 'imported `created` orders expire this long after they were created',
    parse: integer(reservationTtlMsMin, reservationTtlMsMax),
    default: reservationTtlMsDefault,
  },
];

export function migrateCommand(program: Command): void {
  addFlags(
    program
      .command('migrate')
      .description('copy every key under an etcd prefix into the data directory: chunked, resumable, checksummed'),
    migrateFlags,
  ).action(async (options: MigrateOptions, command: Command) => {
    const fail = (message: string) => command.error(`error: ${message}`, { exitCode: migrateExitCodes.usage });
    if (options.legacy) options.mapping = 'legacy';
    if (options.transform !== undefined && options.mapping === 'legacy')
      fail('--transform and --mapping legacy exclude each other');
    if (options.follow && (options.mapping !== 'raw' || options.transform !== undefined)) {
      fail('--follow applies changes byte for byte and needs --mapping raw (records mode imports once)');
    }
    if (options.dryRun && (options.resume || options.follow || options.verify)) {
      fail('--dry-run writes nothing, so it cannot be combined with --resume, --follow or --verify');
    }
    process.exitCode = await runMigrate(options, fail);
  });
}

async function runMigrate(options: MigrateOptions, fail: (message: string) => never): Promise<number> {
  const prefix = Buffer.from(options.prefix, 'utf8');
  const client = connectEtcd(options.etcdEndpoints);
  let destination: Destination | undefined;
  try {
    let mapper: RecordMapper | undefined;
    let mapping = 'raw';
    let beforeCopy: ((revision: number) => Promise<void>) | undefined;
    if (options.transform !== undefined) {
      try {
        ({ mapper, mapping } = await loadTransform(options.transform));
      } catch (error) {
        return fail(`--transform ${options.transform}: ${(error as Error).message}`);
      }
    } else if (options.mapping === 'legacy') {
      const prices = new Map<string, number>();
      mapper = legacyMapper(prefix, prices);
      mapping = 'legacy';
      beforeCopy = async (revision) => loadLegacyPrices(client, prefix, revision, prices);
    }
    if (!options.dryRun) {
      destination =
        mapper === undefined
          ? new RawDestination(options.dataDir)
          : new RecordsDestination(options.dataDir, mapper, { reservationTtlMs: options.reservationTtlMs });
    }
    const result = await bulkCopy(destination, {
      client,
      endpoints: options.etcdEndpoints,
      prefix,
      mapping,
      chunkKeys: options.chunkSize,
      resume: options.resume ?? false,
      beforeCopy,
      // A dry run still maps every key, so a bad record is found before anything is written.
      dryRunMap: mapper === undefined ? undefined : (entries) => mapEntries(mapper, entries).skipped,
      progress: (total, start) => createProgress(total, start, process.stderr),
    });
    const manifestPath = options.dryRun
      ? undefined
      : (options.manifest ?? join(options.dataDir, 'migrate-manifest.json'));
    const manifest = buildManifest(result.checkpoint, result.chunks);
    if (manifestPath !== undefined) writeManifest(manifestPath, manifest);
    printSummary(result, manifest.sha256, manifestPath, options);
    if (destination instanceof RecordsDestination) {
      const orphans = await destination.orphanTallies();
      if (orphans.length > 0) {
        process.stderr.write(
          `warning: orders reference ${orphans.length} SKU(s) the source does not hold: ${orphans.slice(0, 10).join(', ')}\n`,
        );
      }
    }
    if (options.verify && destination !== undefined) {
      const report =
        destination instanceof RawDestination
          ? await verifyRaw(client, destination, result.checkpoint, result.chunks)
          : await verifyRecords(client, (destination as RecordsDestination).store, result.checkpoint, result.chunks);
      if (!printVerify(report, manifest.sha256, result.checkpoint)) return migrateExitCodes.failed;
    }
    if (options.follow && destination instanceof RawDestination) {
      await runFollow(client, destination, result.checkpoint);
    }
    return migrateExitCodes.ok;
  } catch (error) {
    if (error instanceof MigrationUsageError) {
      process.stderr.write(`error: ${error.message}\n`);
      return migrateExitCodes.usage;
    }
    if (error instanceof CompactedRevisionError) {
      process.stderr.write(
        `error: ${error.message}\n` +
          `  (exit ${migrateExitCodes.compacted}: the migration needs etcd history that compaction removed; ` +
          'start a new migration into a new --data-dir, and keep etcd from compacting past it while it runs)\n',
      );
      return migrateExitCodes.compacted;
    }
    process.stderr.write(`error: migration failed: ${(error as Error).message}\n`);
    return migrateExitCodes.failed;
  } finally {
    await destination?.close();
    client.close();
  }
}

async function loadLegacyPrices(client: Etcd3, prefix: Buffer, revision: number, prices: Map<string, number>) {
  const skuPrefix = Buffer.concat([prefix, Buffer.from('shirt:sku:')]);
  const range = { start: skuPrefix, end: prefixRangeEnd(skuPrefix) };
  for await (const page of readPages(client, range, revision, migrateChunkKeysDefault)) {
    for (const [sku, price] of legacyPrices(prefix, page)) prices.set(sku, price);
  }
}

function printSummary(result: CopyResult, sha256: string, manifestPath: string | undefined, options: MigrateOptions) {
  const { checkpoint } = result;
  const rate = result.durationMs > 0 ? Math.round(result.keysThisRun / (result.durationMs / 1000)) : 0;
  const lines = [
    `${options.dryRun ? 'dry run: would migrate' : 'migrated'} ${checkpoint.keys} keys (${formatBytes(checkpoint.bytes)}) ` +
      `under prefix ${JSON.stringify(options.prefix)} at revision ${checkpoint.revision}, mapping ${checkpoint.mapping}`,
    result.keysThisRun > 0 || !result.resumed
      ? `this run: ${result.keysThisRun} keys in ${formatDuration(result.durationMs)} (${rate} keys/s, ${Math.round(result.durationMs)} ms)${result.resumed ? ', resumed' : ''}`
      : 'this run: nothing to copy (the migration in --data-dir was already complete)',
    ...(checkpoint.skipped > 0 ? [`skipped ${checkpoint.skipped} keys the mapping does not import`] : []),
    `checksum sha256 ${sha256} (${result.chunks.length} chunks)`,
    ...(manifestPath ? [`manifest ${manifestPath}`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printVerify(report: VerifyReport, manifestSha256: string, checkpoint: Checkpoint): boolean {
  const atPinned = report.revision === checkpoint.revision;
  if (atPinned && report.sourceSha256 !== manifestSha256) {
    report.problems.push(`the source hashes to ${report.sourceSha256}, the manifest says ${manifestSha256}`);
  }
  for (const difference of report.differences.slice(0, migrateVerifyKeysPrintedMax)) {
    const text = difference.key.toString('utf8');
    process.stdout.write(
      `  differs: ${JSON.stringify(text)} (base64 ${difference.key.toString('base64')}): ${difference.problem}\n`,
    );
  }
  const hidden = report.differences.length - migrateVerifyKeysPrintedMax;
  if (hidden > 0) process.stdout.write(`  ... and ${hidden} more differing keys\n`);
  for (const problem of report.problems.slice(0, migrateVerifyKeysPrintedMax)) process.stdout.write(`  ${problem}\n`);
  const ok = report.differences.length === 0 && report.problems.length === 0;
  process.stdout.write(
    `verify: ${report.keys} keys in ${report.chunks} chunks at revision ${report.revision}: ` +
      `${ok ? 'source and destination agree' : `${report.differences.length} differing keys, ${report.problems.length} other problems`}\n`,
  );
  return ok;
}

async function runFollow(client: Etcd3, destination: RawDestination, checkpoint: Checkpoint): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await follow({
      client,
      destination,
      checkpoint,
      signal: controller.signal,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `followed ${result.changes} changes; applied through revision ${result.checkpoint.followRevision}\n`,
    );
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
