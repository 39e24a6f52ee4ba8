// `hotstock bench`: without --url, the whole benchmark suite (as `npm run
// bench`: it starts its own servers and baseline). With --url, load against a
// server that is already running: closed-loop maximum throughput on one SKU
// (wrk) and, with --rate, a fixed-rate open-loop run; the SKU is created with
// --admin-key if it does not exist.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError, Option } from 'commander';

const suiteScript = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
/** Stock given to a SKU the bench creates: enough never to sell out during a run. */
const benchSkuStock = 1_000_000_000;

function integerFrom(min: number, flag: string): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < min) {
      throw new InvalidArgumentError(`--${flag} must be an integer >= ${min}, got "${value}"`);
    }
    return parsed;
  };
}

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

export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description('run the benchmark suite, or load a running server with --url')
    .addOption(
      new Option('--url <url>', 'a running hotstock server (omit to run the whole suite)').env('HOTSTOCK_BENCH_URL'),
    )
    .addOption(new Option('--client-key <key>', 'client API key for --url').env('HOTSTOCK_BENCH_CLIENT_KEY'))
    .addOption(
      new Option('--admin-key <key>', 'admin API key, to create the SKU if missing').env('HOTSTOCK_BENCH_ADMIN_KEY'),
    )
    .addOption(new Option('--sku <id>', 'SKU to reserve on').default('bench-hot').env('HOTSTOCK_BENCH_SKU'))
    .addOption(
      new Option('--duration-s <n>', 'seconds per run')
        .argParser(integerFrom(1, 'duration-s'))
        .default(10)
        .env('HOTSTOCK_BENCH_DURATION_S'),
    )
    .addOption(
      new Option('--connections <n>', 'closed-loop connections')
        .argParser(integerFrom(1, 'connections'))
        .default(64)
        .env('HOTSTOCK_BENCH_CONNECTIONS'),
    )
    .addOption(
      new Option('--rate <n>', 'also run a fixed-rate open-loop test at n req/s')
        .argParser(integerFrom(1, 'rate'))
        .env('HOTSTOCK_BENCH_RATE'),
    )
    .addOption(
      new Option('--load-cpu <n>', 'CPU to pin the load generator to')
        .argParser(integerFrom(0, 'load-cpu'))
        .default(0)
        .env('HOTSTOCK_BENCH_LOAD_CPU'),
    )
    .option('--smoke', 'suite only: a few seconds per scenario')
    .option('--only <names>', 'suite only: comma-separated parts of scenario names')
    .action(async (options: BenchOptions) => {
      if (options.url === undefined) {
        process.exitCode = await runSuite(options);
        return;
      }
      if (options.clientKey === undefined) program.error('error: --url needs --client-key');
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
