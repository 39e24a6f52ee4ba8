// The benchmark suite's smoke run (a second or two per scenario, no targets
// judged), so the suite keeps working: every scenario runs against real
// servers, `hotstock check` passes after each, the table lists them all, the
// references are measured in the same run (the mirror scenario's run without
// a mirror too, beside its lag, and the naive compare-and-swap on the etcd
// scenario's etcd), and the JSON record is written.
// Also the LMDB micro-benchmark, briefly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../bench/report.ts';
import type { BenchRow } from '../../bench/scenario.ts';
import { scenarios } from '../../bench/scenarios/index.ts';

const runScript = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
const lmdbBenchScript = fileURLToPath(new URL('../../src/store/lmdb-store.bench.ts', import.meta.url));

/** Runs a script to its end; fails with everything it printed unless it exits 0. */
async function runScriptToEnd(script: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `${script} failed:\n${stderr}\n${stdout}`);
  return stdout;
}

/** The row of `rows` whose measure starts with `measure`, which must have been measured against a baseline. */
function baselineRow(rows: BenchRow[], measure: string): BenchRow {
  const row = rows.find((candidate) => candidate.measure.startsWith(measure));
  assert.ok(row, `a row "${measure}"`);
  assert.ok(row.baseline !== undefined && row.baseline.value > 0, `"${measure}" has a same-run baseline`);
  return row;
}

test('npm run bench -- --smoke runs every scenario, prints the table and writes the JSON', async () => {
  const stdout = await runScriptToEnd(runScript, ['--smoke']);
  assert.match(
    stdout,
    /\| scenario \| measure \| hotstock \| baseline \(same run\) \| ratio \| target \| met \| notes \|/,
  );
  for (const scenario of scenarios) assert.ok(stdout.includes(`| ${scenario.name}`), `table lists ${scenario.name}`);
  const resultsPath = /results: (.+\.json)/.exec(stdout)?.[1];
  assert.ok(resultsPath, 'prints where the JSON went');
  const report = JSON.parse(readFileSync(resultsPath, 'utf8')) as BenchReport;
  rmSync(resultsPath);
  assert.equal(report.smoke, true);
  assert.deepEqual(
    report.scenarios.map((scenario) => scenario.name),
    scenarios.map((scenario) => scenario.name),
  );
  for (const scenario of report.scenarios) {
    assert.equal(scenario.error, undefined, `${scenario.name} ran`);
    // Each scenario proves its result: `hotstock check` on the ledger, or `migrate --verify` on a copy.
    const checks = scenario.rows.filter((row) =>
      /^(hotstock check|hotstock reconcile|migrate --verify)/.test(row.measure),
    );
    assert.ok(checks.length > 0, `${scenario.name} checked its result`);
    for (const check of checks) assert.ok(check.target?.met, `${scenario.name}: ${check.note}`);
  }
  const [throughput] = report.scenarios;
  for (const reference of ['Redis + Lua peer', 'lean durable floor', 'bare Fastify']) {
    baselineRow(throughput!.rows, `durable reservations/s vs ${reference}`);
  }
  for (const measure of ['store writes per reservation', 'version checks per reservation']) {
    const row = throughput!.rows.find((candidate) => candidate.measure.startsWith(measure));
    assert.ok(row !== undefined && row.value > 0, `scenario 1 reports ${measure}`);
  }
  const onEtcd = report.scenarios.find((scenario) => scenario.name.startsWith('7 '));
  baselineRow(onEtcd!.rows, 'durable reservations/s vs naive etcd CAS');
  const mirror = report.scenarios.find((scenario) => scenario.name.startsWith('10 '));
  baselineRow(mirror!.rows, 'durable reservations/s with a mirror vs without');
  for (const measure of ['mirror lag P99, revisions', 'mirror lag P99, seconds']) {
    const row = mirror!.rows.find((candidate) => candidate.measure.startsWith(measure));
    assert.ok(
      row !== undefined && Number.isFinite(row.value) && row.value >= 0,
      `the mirror scenario reports ${measure}`,
    );
  }
  assert.ok(
    mirror!.rows.some((row) => row.measure === 'hotstock reconcile' && row.target?.met),
    'reconcile clean',
  );
  const overload = report.scenarios.find((scenario) => scenario.name.startsWith('5 '));
  baselineRow(overload!.rows, 'P99 ms, all answers');
  assert.ok(
    overload!.rows.some((row) => row.measure === 'socket errors'),
    'overload reports socket errors',
  );
});

test('npm run bench:lmdb prints commits/s, puts/s and commit latency per size', async () => {
  const stdout = await runScriptToEnd(lmdbBenchScript, ['--puts', '1,3', '--committers', '1,4', '--duration-s', '0.2']);
  assert.match(
    stdout,
    /\| puts per commit \| committers \| commits\/s \| puts\/s \| P50 commit ms \| P99 commit ms \|/,
  );
  for (const size of [1, 3]) {
    for (const committers of [1, 4])
      assert.match(stdout, new RegExp(`^\\| ${size} \\| ${committers} \\| [\\d,]+ \\|`, 'm'));
  }
});
