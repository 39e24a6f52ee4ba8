// The results table (markdown, for the terminal and the README) and the JSON
// record written under bench/results/.
import { cpus, totalmem } from 'node:os';
import type { BenchRow } from './scenario.ts';

export interface BenchReport {
  startedAt: string;
  smoke: boolean;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; serverCpu: number; loadCpu: number };
  scenarios: { name: string; description: string; rows: BenchRow[]; error?: string }[];
}

export function machine(serverCpu: number, loadCpu: number): BenchReport['machine'] {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    serverCpu,
    loadCpu,
  };
}

function formatNumber(value: number): string {
  if (Number.isInteger(value) || Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

export function markdownTable(report: BenchReport): string {
  const lines = [
    `Machine: ${report.machine.cores} cores (${report.machine.cpu}), ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; server on CPU ${report.machine.serverCpu}, load on CPU ${report.machine.loadCpu}${report.smoke ? ' — SMOKE RUN, numbers are not meaningful' : ''}`,
    '',
    '| scenario | measure | hotstock | baseline (same run) | ratio | target | met | notes |',
    '|---|---|---:|---:|---:|---|---|---|',
  ];
  for (const scenario of report.scenarios) {
    if (scenario.error !== undefined) {
      lines.push(`| ${scenario.name} | — | — | — | — | — | **failed** | ${scenario.error.split('\n')[0]} |`);
      continue;
    }
    for (const row of scenario.rows) {
      const baseline = row.baseline ? `${formatNumber(row.baseline.value)} (${row.baseline.name})` : '';
      const ratio = row.baseline && row.baseline.value > 0 ? `${(row.value / row.baseline.value).toFixed(2)}x` : '';
      const met = row.target ? (report.smoke ? '(smoke)' : row.target.met ? 'met' : '**not met**') : '';
      lines.push(
        `| ${row.scenario} | ${row.measure} | ${formatNumber(row.value)} | ${baseline} | ${ratio} | ${row.target?.text ?? ''} | ${met} | ${row.note ?? ''} |`,
      );
    }
  }
  lines.push('', ...report.scenarios.map((scenario) => `- **${scenario.name}**: ${scenario.description}`));
  return lines.join('\n');
}
