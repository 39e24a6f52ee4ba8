// hotstock command line: serve | check | bench.
import { Command } from 'commander';
import { benchCommand } from './cli/bench.ts';
import { checkCommand } from './cli/check.ts';
import { serveCommand } from './cli/serve.ts';

const program = new Command()
  .name('hotstock')
  .description('Flash-sale inventory and order service')
  .showHelpAfterError('(add --help for usage)')
  .configureHelp({ showGlobalOptions: true });

serveCommand(program);
checkCommand(program);
benchCommand(program);

await program.parseAsync(process.argv);
