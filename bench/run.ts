// `npm run bench`: runs every scenario (or those named with --only), prints
// the markdown table and writes the JSON record to bench/results/. Server and
// load are pinned to different CPUs; every ratio is to a baseline measured in
// the same run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { type BenchReport, machine, markdownTable } from './report.ts';
import { scenarios } from './scenarios/index.ts';

const resultsDir = new URL('./results/', import.meta.url);

function cpuIndex(value: string): number {
  const cpu = Number(value);
  if (!Number.isInteger(cpu) || cpu < 0) throw new InvalidArgumentError('a CPU index (0, 1, ...)');
  return cpu;
}

const program = new Command()
  .name('bench')
  .description('hotstock benchmark suite')
  .option('--smoke', 'a few seconds per scenario, small sizes; checks the suite runs, judges nothing', false)
  .option('--only <names>', 'comma-separated scenario numbers or parts of names to run (e.g. "1,flash")')
  .option('--server-cpu <n>', 'CPU the server under test is pinned to', cpuIndex, 1)
  .option('--load-cpu <n>', 'CPU the load generator is pinned to', cpuIndex, 0)
  .parse();

const options = program.opts<{ smoke: boolean; only?: string; serverCpu: number; loadCpu: number }>();
const wanted = options.only?.split(',').map((part) => part.trim().toLowerCase());

/** A number picks the scenario it numbers ("1" is not also "6 1,000,000 orders"); words match parts of names. */
function matches(scenarioName: string, part: string): boolean {
  if (/^\d+$/.test(part)) return scenarioName.split(' ')[0] === part;
  return scenarioName.toLowerCase().includes(part);
}

const selected = scenarios.filter((scenario) => !wanted || wanted.some((part) => matches(scenario.name, part)));
if (selected.length === 0) program.error(`no scenario matches --only ${options.only}`);

const report: BenchReport = {
  startedAt: new Date().toISOString(),
  smoke: options.smoke,
  machine: machine(options.serverCpu, options.loadCpu),
  scenarios: [],
};
for (const scenario of selected) {
  process.stderr.write(`\n== ${scenario.name}: ${scenario.description}\n`);
  try {
    const rows = await scenario.run({
      smoke: options.smoke,
      serverCpu: options.serverCpu,
      loadCpu: options.loadCpu,
      log: (line) => process.stderr.write(`   ${line}\n`),
    });
    report.scenarios.push({ name: scenario.name, description: scenario.description, rows });
  } catch (error) {
    process.stderr.write(`   failed: ${(error as Error).stack}\n`);
    report.scenarios.push({ name: scenario.name, description: scenario.description, rows: [], error: String(error) });
  }
}

mkdirSync(resultsDir, { recursive: true });
const file = new URL(`${report.startedAt.replaceAll(':', '-')}${options.smoke ? '-smoke' : ''}.json`, resultsDir);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`\n${markdownTable(report)}\n\nresults: ${file.pathname}\n`);
if (report.scenarios.some((scenario) => scenario.error !== undefined)) process.exitCode = 1;
