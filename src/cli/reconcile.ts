// `hotstock reconcile`: compares the two stores of a cutover record by record
// (cutover/reconcile.ts), offline or while the service runs, prints every
// difference and exits 1 if there is any. The LMDB store is opened for
// reading only, so a running service keeps its lock on it.
import { type Command, InvalidArgumentError } from 'commander';
import { reconcileDifferencesPrintedMax } from '../constants.ts';
import { type ReconcileReport, reconcile } from '../cutover/reconcile.ts';
import { ensureLayout, LayoutMismatch, type StoreKind } from '../layout.ts';
import type { Store } from '../store/contract.ts';
import { LmdbStore } from '../store/lmdb-store.ts';
import { exitCodes } from './exit-codes.ts';
import { addFlags, type Flag } from './flags.ts';
import { assertStoreDirectory, openEtcd, type StoreAccess, storeAccessFlags } from './store-flags.ts';

interface ReconcileOptions extends StoreAccess {
  store: StoreKind;
  mirror?: StoreKind;
  json?: boolean;
}

const reconcileFlags: readonly Flag[] = [
  { name: 'store', arg: 'kind', help: "the service's --store", choices: ['lmdb', 'etcd'], default: 'lmdb' },
  { name: 'mirror', arg: 'kind', help: "the service's --mirror (the other store)", choices: ['lmdb', 'etcd'] },
  ...storeAccessFlags,
  { name: 'json', help: 'print the report as JSON' },
];

/** Both stores, or the reason the flags cannot name them. */
function openStores(options: ReconcileOptions): Record<StoreKind, Store> {
  if (options.mirror === undefined) throw new InvalidArgumentError('--mirror is required: the store to compare with');
  if (options.mirror === options.store) throw new InvalidArgumentError('--store and --mirror must differ');
  assertStoreDirectory(options.dataDir, 'no store there');
  const etcd = openEtcd(options, 'reconcile (one store is etcd)');
  return { lmdb: new LmdbStore({ dataDir: options.dataDir, readOnly: true }), etcd };
}

function print(report: ReconcileReport): void {
  const lines = [
    `compared lmdb and etcd record by record: ${report.differences.length === 0 ? 'no differences' : `${report.differences.length} difference(s)`} (${report.candidates} key(s) differed at first reading)`,
  ];
  for (const difference of report.differences.slice(0, reconcileDifferencesPrintedMax)) {
    const values = Object.entries(difference.values)
      .map(([store, value]) => `${store} ${JSON.stringify(value)?.slice(0, 200)}`)
      .join(' | ');
    lines.push(
      `  ${JSON.stringify(difference.key)} [${difference.reason}, authoritative: ${difference.authoritative ?? 'unknown'}] ${values}`,
    );
  }
  const hidden = Math.max(0, report.differences.length - reconcileDifferencesPrintedMax) + report.uncounted;
  if (hidden > 0) lines.push(`  ... and ${hidden} more`);
  for (const behind of report.behind) {
    lines.push(`  the mirror ${behind.from} -> ${behind.to} has ${behind.entries} outbox entries to apply`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function reconcileCommand(program: Command): void {
  const command = addFlags(
    program
      .command('reconcile')
      .description('compare the two stores of a cutover record by record; exits 1 on any difference'),
    reconcileFlags,
  );
  command.action(async (options: ReconcileOptions) => {
    let stores: Record<StoreKind, Store>;
    try {
      stores = openStores(options);
    } catch (error) {
      return command.error(`error: ${(error as Error).message}`, { exitCode: exitCodes.usage });
    }
    let report: ReconcileReport;
    try {
      await ensureLayout(stores.lmdb, { create: false });
      await ensureLayout(stores.etcd, { create: false });
      report = await reconcile(stores);
    } catch (error) {
      if (!(error instanceof LayoutMismatch)) throw error;
      return command.error(`error: ${error.message}`, { exitCode: exitCodes.usage });
    } finally {
      await Promise.all([stores.lmdb.close(), stores.etcd.close()]);
    }
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else print(report);
    process.exitCode = report.differences.length === 0 && report.uncounted === 0 ? exitCodes.ok : exitCodes.failed;
  });
}
