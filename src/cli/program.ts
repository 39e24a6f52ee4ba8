// The hotstock command line: serve | check | bench | migrate | reconcile, with --version
// and one exit-code table (exit-codes.ts).
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { benchCommand } from './bench.ts';
import { checkCommand } from './check.ts';
import { exitCodes } from './exit-codes.ts';
import { strictSwitchTwins } from './flags.ts';
import { migrateCommand } from './migrate.ts';
import { reconcileCommand } from './reconcile.ts';
import { serveCommand } from './serve.ts';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The whole command line; parse it with `parseAsync`. Every refusal before work exits with exitCodes.usage. */
export function buildProgram(): Command {
  const program = new Command()
    .name('hotstock')
    .description('Flash-sale inventory and order service')
    .version(version, '-V, --version', 'print the version and exit')
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    // Set before the commands are added, so each inherits it: help and --version exit 0, any refusal 2.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? exitCodes.ok : exitCodes.usage));
  strictSwitchTwins(program);
  serveCommand(program);
  checkCommand(program);
  benchCommand(program);
  migrateCommand(program);
  reconcileCommand(program);
  return program;
}
