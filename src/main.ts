// hotstock command line: serve | check | bench | migrate (see cli/program.ts).
import { buildProgram } from './cli/program.ts';

await buildProgram().parseAsync(process.argv);
