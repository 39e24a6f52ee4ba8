// `hotstock bench`: without --url, the whole benchmark suite (as `npm run
// bench`: it starts its own servers and baseline). With --url, load against a
// server that is already running: closed-loop maximum throughput on one SKU
// (wrk) and, with --rate, a fixed-rate open-loop run; the SKU is created with
// --admin-key if it does not exist.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { exitCodes } from './exit-codes.ts';
import { addFlags, type Flag, integer } from './flags.ts';

const suiteScript = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
/** Stock given to a SKU the bench creates: enough never to sell out during a run. */
const benchSkuStock = 1_000_000_000;

interface BenchOptions {
  url?: string;
  clientKey?: string;
  adminKey?: string;
  sku: string;
  durationS: number;
  connections: number;
  rate?: number;
  loadCpu: number;
  smoke?: boolean;
  only?: string;
}

/** Every `bench` flag; the twins are HOTSTOCK_BENCH_<FLAG>, apart from the service's own. */
const benchFlags: readonly Flag[] = [
  { name: 'url', arg: 'url', help: 'a running hotstock server (omit to run the whole suite)' },
  { name: 'client-key', arg: 'key', help: 'client API key for --url' },
  { name: 'admin-key', arg: 'key', help: 'admin API key, to create the SKU if missing' },
  { name: 'sku', arg: 'id', help: 'SKU to reserve on', default: 'bench-hot' },
  { name: 'duration-s', arg: 'n', help: 'seconds per run', parse: integer(1, 86_400), default: 10 },
  { name: 'connections', arg: 'n', help: 'closed-loop connections', parse: integer(1, 65_536), default: 64 },
  { name: 'rate', arg: 'n', help: 'also run a fixed-rate open-loop test at n req/s', parse: integer(1, 1_000_000) },
  { name: 'load-cpu', arg: 'n', help: 'CPU to pin the load generator to', parse: integer(0, 4_096), default: 0 },
  { name: 'smoke', help: 'suite only: a few seconds per scenario' },
  { name: 'only', arg: 'names', help: 'suite only: comma-separated parts of scenario names' },
];

export function benchCommand(program: Command): void {
  addFlags(
    program.command('bench').description('run the benchmark suite, or load a running server with --url'),
    benchFlags,
    'HOTSTOCK_BENCH_',
  ).action(async (options: BenchOptions) => {
    if (options.url === undefined) {
      process.exitCode = await runSuite(options);
      return;
    }
    if (options.clientKey === undefined)
      program.error('error: --url needs --client-key', { exitCode: exitCodes.usage });
    await benchRunningServer(options as BenchOptions & { url: string; clientKey: string });
  });
}

function runSuite(options: BenchOptions): Promise<number> {
  const args = [suiteScript, ...(options.smoke ? ['--smoke'] : []), ...(options.only ? ['--only', options.only] : [])];
  const child = spawn(process.execPath, args, { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

async function benchRunningServer(options: BenchOptions & { url: string; clientKey: string }): Promise<void> {
  // The load tools live with the suite; loaded only when a run needs them.
  const { runWrk } = await import('../../bench/wrk.ts');
  const { runOpenLoop } = await import('../../bench/open-loop.ts');
  const { createSkus } = await import('../../bench/hotstock-api.ts');
  const url = options.url.replace(/\/$/, '');
  const existing = await fetch(`${url}/v1/skus/${encodeURIComponent(options.sku)}`, {
    headers: { authorization: `Bearer ${options.clientKey}` },
  });
  if (existing.status === 404) {
    if (options.adminKey === undefined)
      throw new Error(`SKU ${options.sku} does not exist; pass --admin-key to create it`);
    await createSkus(url, [options.sku], benchSkuStock, options.adminKey);
  } else if (existing.status !== 200) {
    throw new Error(`GET /v1/skus/${options.sku}: ${existing.status} ${await existing.text()}`);
  }
  const closed = await runWrk({
    cpu: options.loadCpu,
    url,
    durationS: options.durationS,
    connections: options.connections,
    env: { BENCH_KEY: options.clientKey, BENCH_SKUS: options.sku },
  });
  const lines = [
    '| run | requests/s | P50 ms | P99 ms | P99.9 ms | statuses |',
    '|---|---:|---:|---:|---:|---|',
    `| closed loop, ${options.connections} connections | ${closed.requestsPerS.toFixed(0)} | ${closed.p50Ms} | ${closed.p99Ms} | ${closed.p999Ms} | ${JSON.stringify(closed.statuses)} |`,
  ];
  if (options.rate !== undefined) {
    const open = await runOpenLoop({
      cpu: options.loadCpu,
      url,
      rate: options.rate,
      durationS: options.durationS,
      connections: 256,
      apiKey: options.clientKey,
      skus: [options.sku],
      timeoutMs: 10_000,
    });
    lines.push(
      `| open loop, ${options.rate}/s offered | ${(open.all.count / open.durationS).toFixed(0)} | ${open.all.p50Ms} | ${open.all.p99Ms} | ${open.all.p999Ms} | ${JSON.stringify(open.statuses)}, ${open.timeouts} timeouts |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
