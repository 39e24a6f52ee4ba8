// `hotstock check`: verify every ledger invariant of a store, offline. For the
// embedded store the service must be stopped; for etcd the instances should be
// stopped (or idle), so the scan sees one settled ledger.
import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { checkLedger } from '../check/ledger-check.ts';
import { etcdMaxTxnOpsDefault } from '../constants.ts';
import { ensureLayout, LayoutMismatch } from '../layout.ts';
import type { Store } from '../store/contract.ts';
import { createEtcdClient, EtcdStore } from '../store/etcd-store.ts';
import { LmdbStore } from '../store/lmdb-store.ts';

/** Violations printed; the count of the rest is printed after them. */
const violationsPrintedMax = 100;

interface CheckOptions {
  store: 'lmdb' | 'etcd';
  dataDir: string;
  etcdEndpoints?: string;
  etcdPrefix: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  json?: boolean;
}

function env(flag: string): string {
  return `HOTSTOCK_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function openStore(options: CheckOptions): Store {
  if (options.store === 'lmdb') {
    if (!existsSync(options.dataDir)) throw new InvalidArgumentError(`--data-dir ${options.dataDir} does not exist`);
    return new LmdbStore({ dataDir: options.dataDir, readOnly: true });
  }
  const endpoints = (options.etcdEndpoints ?? '')
    .split(',')
    .map((endpoint) => endpoint.trim())
    .filter((endpoint) => endpoint.length > 0);
  if (endpoints.length === 0) throw new InvalidArgumentError('--store etcd needs --etcd-endpoints');
  const tls = options.etcdCa
    ? { caFile: options.etcdCa, certFile: options.etcdCert, keyFile: options.etcdKey }
    : undefined;
  return new EtcdStore({
    client: createEtcdClient({ endpoints, ...(tls ? { tls } : {}) }),
    ownsClient: true,
    prefix: options.etcdPrefix,
    maxTxnOps: etcdMaxTxnOpsDefault,
  });
}

export function checkCommand(program: Command): void {
  const command = program
    .command('check')
    .description('verify the stock ledger of a stopped store; exits 1 on any violation')
    .addOption(
      new Option('--store <kind>', 'storage backend').choices(['lmdb', 'etcd']).env(env('store')).default('lmdb'),
    )
    .addOption(new Option('--data-dir <dir>', 'directory of the LMDB store').env(env('data-dir')).default('./data'))
    .addOption(new Option('--etcd-endpoints <urls>', 'etcd client URLs, comma-separated').env(env('etcd-endpoints')))
    .addOption(
      new Option('--etcd-prefix <prefix>', 'namespace of hotstock keys').env(env('etcd-prefix')).default('hotstock/'),
    )
    .addOption(new Option('--etcd-ca <file>', 'CA certificate for TLS to etcd').env(env('etcd-ca')))
    .addOption(new Option('--etcd-cert <file>', 'client certificate for TLS to etcd').env(env('etcd-cert')))
    .addOption(new Option('--etcd-key <file>', 'client key for TLS to etcd').env(env('etcd-key')))
    .addOption(new Option('--json', 'print the report as JSON'));
  command.action(async (options: CheckOptions) => {
    let store: Store;
    try {
      store = openStore(options);
    } catch (error) {
      return command.error(`error: ${(error as Error).message}`, { exitCode: 2 });
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
    process.exitCode = report.violations.length === 0 ? 0 : 1;
  });
}
