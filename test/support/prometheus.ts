// A real Prometheus for tests (Debian's `prometheus`, which also ships
// `promtool`): started on a free loopback port with a temporary TSDB, loaded
// with ops/prometheus/prometheus.yml pointed at the servers a test started,
// and queried through its HTTP API. Also the readers of the shipped rules and
// dashboard that the ops tests share.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from './etcd.ts';

export const opsDir = fileURLToPath(new URL('../../ops/', import.meta.url));
export const prometheusBinary = process.env.HOTSTOCK_TEST_PROMETHEUS ?? 'prometheus';
export const promtoolBinary = process.env.HOTSTOCK_TEST_PROMTOOL ?? 'promtool';
/** Prometheus that is not ready by then is reported as failed (it usually needs a second or two). */
const readyTimeoutMs = 30_000;
/** Longest one API call may take. */
const queryTimeoutMs = 10_000;
/** Time Prometheus gets to stop on SIGTERM before it is killed. */
const stopGraceMs = 5_000;
const readyPollMs = 100;

// ---- the shipped rules and dashboard -------------------------------------------

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RecordingRule {
  record: string;
  expr: string;
}

export type Rule = AlertRule | RecordingRule;

export const ruleFiles = ['hotstock-slo.rules.yml', 'hotstock-alerts.rules.yml', 'etcd-alerts.rules.yml'].map((name) =>
  join(opsDir, 'prometheus', 'rules', name),
);

/** Every rule of every shipped rule file. */
export function shippedRules(): Rule[] {
  return ruleFiles.flatMap((file) => {
    const parsed = parse(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] };
    return parsed.groups.flatMap((group) => group.rules);
  });
}

export interface DashboardTarget {
  expr: string;
  refId: string;
}

export interface DashboardPanel {
  type: string;
  title: string;
  description?: string;
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: DashboardTarget[];
}

export interface Dashboard {
  templating: { list: { name: string; type: string; query: unknown }[] };
  panels: DashboardPanel[];
}

export function shippedDashboard(): Dashboard {
  return JSON.parse(readFileSync(join(opsDir, 'grafana', 'hotstock.json'), 'utf8')) as Dashboard;
}

// ---- processes ---------------------------------------------------------------

/** Runs a command to its end and hands back its exit code and output (never throws on a failing exit). */
export function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof (error as NodeJS.ErrnoException).code === 'string') reject(error);
      else resolve({ code: error ? (error.code as number | null) : 0, output: `${stdout}${stderr}` });
    });
  });
}

export interface ScrapeTargets {
  hotstock: string[];
  etcd: string[];
}

/**
 * The shipped prometheus.yml with its example targets replaced by the given
 * ones and every interval at 1 s, so a test sees rates within seconds.
 */
export function testConfig(targets: ScrapeTargets): string {
  const config = parse(readFileSync(join(opsDir, 'prometheus', 'prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  for (const job of ['hotstock', 'etcd'] as const) {
    const scrape = config.scrape_configs.find((candidate) => candidate.job_name === job);
    if (scrape === undefined) throw new Error(`prometheus.yml has no ${job} job`);
    scrape.static_configs = [{ targets: targets[job] }];
  }
  return stringify(config);
}

export interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export interface PrometheusServer {
  url: string;
  /** GET /api/v1/query: the expression evaluated now. */
  query(expr: string): Promise<QueryResult>;
  get<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) })).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, readyPollMs));
  }
  throw new Error(`prometheus not ready after ${readyTimeoutMs} ms: ${output()}`);
}

/** Starts Prometheus on the test config (rules copied next to it, as prometheus.yml expects). */
export async function startPrometheus(targets: ScrapeTargets): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hotstock-prometheus-'));
  cpSync(join(opsDir, 'prometheus', 'rules'), join(dir, 'rules'), { recursive: true });
  writeFileSync(join(dir, 'prometheus.yml'), testConfig(targets));
  const url = `http://127.0.0.1:${await freePort()}`;
  const child = spawn(
    prometheusBinary,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${url.slice('http://'.length)}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const get = async <T>(path: string): Promise<T> =>
    (await (await fetch(`${url}${path}`, { signal: AbortSignal.timeout(queryTimeoutMs) })).json()) as T;
  try {
    await waitReady(url, child, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    get,
    query: (expr) => get<QueryResult>(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    stop,
  };
}
