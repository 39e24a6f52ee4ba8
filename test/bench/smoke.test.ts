// The benchmark suite's smoke run (a second or two per scenario, no targets
// judged), so the suite keeps working: every scenario runs against real
// servers, `hotstock check` passes after each, the table lists them all, and
// the JSON record is written.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../bench/report.ts';
import { scenarios } from '../../bench/scenarios/index.ts';

const runScript = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

test('npm run bench -- --smoke runs every scenario, prints the table and writes the JSON', async () => {
  const child = spawn(process.execPath, [runScript, '--smoke'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `bench smoke run failed:\n${stderr}\n${stdout}`);
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
    const checks = scenario.rows.filter((row) => /^(hotstock check|migrate --verify)/.test(row.measure));
    assert.ok(checks.length > 0, `${scenario.name} checked its result`);
    for (const check of checks) assert.ok(check.target?.met, `${scenario.name}: ${check.note}`);
  }
  assert.ok(
    report.scenarios[0]!.rows.some((row) => row.baseline !== undefined && row.baseline.value > 0),
    'the baseline was measured in the same run',
  );
});
