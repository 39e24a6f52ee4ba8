// `hotstock check`: verify every ledger invariant of a stopped store, offline.
import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { checkLedger } from '../check/ledger-check.ts';
import { LmdbStore } from '../store/lmdb-store.ts';

/** Violations printed; the count of the rest is printed after them. */
const violationsPrintedMax = 100;

export function checkCommand(program: Command): void {
  program
    .command('check')
    .description('verify the stock ledger of a stopped store; exits 1 on any violation')
    .addOption(new Option('--data-dir <dir>', 'directory of the LMDB store').env('HOTSTOCK_DATA_DIR').default('./data'))
    .addOption(new Option('--json', 'print the report as JSON'))
    .action(async (options: { dataDir: string; json?: boolean }) => {
      if (!existsSync(options.dataDir))
        program.error(`error: --data-dir ${options.dataDir} does not exist`, { exitCode: 2 });
      const store = new LmdbStore({ dataDir: options.dataDir, readOnly: true });
      const report = await checkLedger(store);
      await store.close();
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
