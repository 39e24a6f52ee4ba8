// `hotstock check`: verify every ledger invariant of a store, offline. For the
// embedded store the service must be stopped; for etcd the instances should be
// stopped (or idle), so the scan sees one settled ledger.
import type { Command } from 'commander';
import { checkLedger } from '../check/ledger-check.ts';
import { ensureLayout, LayoutMismatch } from '../layout.ts';
import type { Store } from '../store/contract.ts';
import { LmdbStore } from '../store/lmdb-store.ts';
import { exitCodes } from './exit-codes.ts';
import { addFlags, type Flag } from './flags.ts';
import { assertStoreDirectory, openEtcd, type StoreAccess, storeAccessFlags } from './store-flags.ts';

/** Violations printed; the count of the rest is printed after them. */
const violationsPrintedMax = 100;

interface CheckOptions extends StoreAccess {
  store: 'lmdb' | 'etcd';
  json?: boolean;
}

const checkFlags: readonly Flag[] = [
  { name: 'store', arg: 'kind', help: 'storage backend', choices: ['lmdb', 'etcd'], default: 'lmdb' },
  ...storeAccessFlags,
  { name: 'json', help: 'print the report as JSON' },
];

function openStore(options: CheckOptions): Store {
  if (options.store === 'lmdb') {
    assertStoreDirectory(options.dataDir, 'there is no store to check');
    return new LmdbStore({ dataDir: options.dataDir, readOnly: true });
  }
  return openEtcd(options, '--store etcd');
}

export function checkCommand(program: Command): void {
  const command = addFlags(
    program.command('check').description('verify the stock ledger of a stopped store; exits 1 on any violation'),
    checkFlags,
  );
  command.action(async (options: CheckOptions) => {
    let store: Store;
    try {
      store = openStore(options);
    } catch (error) {
      return command.error(`error: ${(error as Error).message}`, { exitCode: exitCodes.usage });
    }
    let report: Awaited<ReturnType<typeof checkLedger>>;
    try {
      await ensureLayout(store, { create: false });
      report = await checkLedger(store);
    } catch (error) {
      if (!(error instanceof LayoutMismatch)) throw error;
      return command.error(`error: ${error.message}`, { exitCode: 2 });
    } finally {
      await store.close();
    }
    if (options.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      const verdict = report.violations.length === 0 ? 'ledger exact' : `${report.violations.length} violation(s)`;
      process.stdout.write(
        `checked ${report.skus} SKUs and ${report.orders} orders at revision ${report.revision}: ${verdict}\n`,
      );
      for (const violation of report.violations.slice(0, violationsPrintedMax))
        process.stdout.write(`  ${violation}\n`);
      const hidden = report.violations.length - violationsPrintedMax;
      if (hidden > 0) process.stdout.write(`  ... and ${hidden} more\n`);
    }
    process.exitCode = report.violations.length === 0 ? exitCodes.ok : exitCodes.failed;
  });
}
