// The shipped Prometheus rules, checked by promtool (Debian's `prometheus`
// package): they parse, the example config loads them, and the unit tests in
// ops/prometheus/tests pass. Then what the unit tests must cover: every alert
// has a case where it fires and a case where it stays silent, a severity and
// a runbook, and the SLO alerts burn at the SRE workbook's rates and windows.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { type AlertRule, opsDir, promtoolBinary, ruleFiles, run, shippedRules } from '../support/prometheus.ts';

const testsDir = join(opsDir, 'prometheus', 'tests');
const testFiles = readdirSync(testsDir)
  .filter((name) => name.endsWith('.test.yml'))
  .map((name) => join(testsDir, name));

interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts: unknown[];
}

const alerts = shippedRules().filter((rule): rule is AlertRule => 'alert' in rule);

test('promtool checks the rules and the example config that loads them', async () => {
  const rules = await run(promtoolBinary, ['check', 'rules', ...ruleFiles]);
  console.log(rules.output.trim().replaceAll(/^/gm, '# '));
  assert.equal(rules.code, 0, rules.output);
  assert.equal(rules.output.match(/SUCCESS/g)?.length, ruleFiles.length);
  const config = await run(promtoolBinary, ['check', 'config', join(opsDir, 'prometheus', 'prometheus.yml')]);
  assert.equal(config.code, 0, config.output);
  assert.match(config.output, /SUCCESS: 3 rule files found/);
});

test('promtool runs the alert unit tests, and they pass', async () => {
  assert.ok(testFiles.length >= 3, `unit test files in ${testsDir}`);
  const result = await run(promtoolBinary, ['test', 'rules', ...testFiles]);
  console.log(result.output.trim().replaceAll(/^/gm, '# '));
  assert.equal(result.code, 0, result.output);
  assert.equal(result.output.match(/SUCCESS/g)?.length, testFiles.length);
});

test('every alert has a firing case and a silent case in the unit tests', () => {
  const cases: AlertCase[] = testFiles.flatMap((file) => {
    const parsed = parse(readFileSync(file, 'utf8')) as { tests: { alert_rule_test?: AlertCase[] }[] };
    return parsed.tests.flatMap((unit) => unit.alert_rule_test ?? []);
  });
  assert.ok(alerts.length >= 19, `found ${alerts.length} alerts`);
  for (const { alert } of alerts) {
    const own = cases.filter((unitCase) => unitCase.alertname === alert);
    assert.ok(
      own.some((unitCase) => unitCase.exp_alerts.length > 0),
      `${alert}: a case where it fires`,
    );
    assert.ok(
      own.some((unitCase) => unitCase.exp_alerts.length === 0),
      `${alert}: a case where it stays silent`,
    );
  }
  const unknown = cases.filter((unitCase) => !alerts.some((rule) => rule.alert === unitCase.alertname));
  assert.deepEqual(unknown, [], 'every case tests a shipped alert');
});

test('every alert has a severity, a summary and a runbook saying what to look at and what to do', () => {
  for (const rule of alerts) {
    assert.ok(['page', 'ticket'].includes(rule.labels?.severity ?? ''), `${rule.alert}: severity page or ticket`);
    assert.ok((rule.annotations?.summary ?? '').length > 0, `${rule.alert}: summary`);
    const runbook = rule.annotations?.runbook ?? '';
    assert.ok(runbook.length >= 150, `${rule.alert}: a runbook of some substance (${runbook.length} characters)`);
    assert.match(runbook, /\b(look|check)\b/i, `${rule.alert}: the runbook says what to look at`);
  }
});

test('the SLO alerts burn 14.4x over 1h and 5m, 6x over 6h and 30m, 1x over 3d and 6h', () => {
  const burns = new Map<string, string[]>();
  for (const rule of alerts) {
    const match =
      /hotstock:(\w+):ratio_rate(\w+) > \(([\d.]+) \* ([\d.]+)\)\s+and\s+hotstock:\1:ratio_rate(\w+) > \(\3 \* \4\)/.exec(
        rule.expr,
      );
    if (match === null) continue;
    const [, sli, long, factor, budget, short] = match;
    burns.set(sli!, [...(burns.get(sli!) ?? []), `${factor}x${budget} ${long}&${short} ${rule.labels?.severity}`]);
  }
  assert.deepEqual(Object.fromEntries(burns), {
    reservation_errors: ['14.4x0.001 1h&5m page', '6x0.001 6h&30m page', '1x0.001 3d&6h ticket'],
    reservation_slow: ['14.4x0.01 1h&5m page', '6x0.01 6h&30m page', '1x0.01 3d&6h ticket'],
  });
});
