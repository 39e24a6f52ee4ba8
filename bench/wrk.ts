// Closed-loop load with wrk (Debian's wrk), pinned to the load CPU, driven by
// bench/wrk/orders.lua. Used for the maximum-throughput scenarios, where a
// fixed number of connections each send their next request as soon as the
// previous one is answered.
import { fileURLToPath } from 'node:url';
import { resultLine, runProcess } from './process.ts';

const ordersScript = fileURLToPath(new URL('./wrk/orders.lua', import.meta.url));

export interface WrkOptions {
  cpu: number;
  url: string;
  durationS: number;
  connections: number;
  /** wrk threads; one per load CPU is enough. */
  threads?: number;
  /** Environment for orders.lua: BENCH_KEY, BENCH_SKUS, BENCH_BATCH, BENCH_READ_PERCENT, BENCH_USERS, … */
  env: Record<string, string>;
  /** Open files wrk may hold; needed above a few thousand connections. */
  fileDescriptorsMax?: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: { connect: number; read: number; write: number; timeout: number };
  /** Count per HTTP status, e.g. {"201": 1200, "409": 3}. */
  statuses: Record<string, number>;
  /** Count per problem code of the error answers, e.g. {"overloaded": 40}. */
  codes: Record<string, number>;
}

export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections}`,
    `-d${options.durationS}s`,
    '--timeout',
    '10s',
    '-s',
    ordersScript,
    options.url,
  ];
  const run = await runProcess('wrk', args, {
    cpu: options.cpu,
    env: { BENCH_RUN: `${process.pid}-${Date.now().toString(36)}`, ...options.env },
    fileDescriptorsMax: options.fileDescriptorsMax,
  });
  const raw = resultLine<{
    requests: number;
    durationUs: number;
    p50Us: number;
    p99Us: number;
    p999Us: number;
    maxUs: number;
    errors: WrkResult['errors'];
    statuses: Record<string, number>;
    codes: Record<string, number>;
  }>(run, 'WRK_RESULT ', 'wrk');
  const durationS = raw.durationUs / 1e6;
  return {
    requests: raw.requests,
    durationS,
    requestsPerS: raw.requests / durationS,
    p50Ms: raw.p50Us / 1000,
    p99Ms: raw.p99Us / 1000,
    p999Ms: raw.p999Us / 1000,
    maxMs: raw.maxUs / 1000,
    errors: raw.errors,
    statuses: raw.statuses,
    codes: raw.codes,
  };
}

/** Socket errors of every kind wrk counts: connect, read, write and timeouts. */
export function socketErrors(result: WrkResult): number {
  const { connect, read, write, timeout } = result.errors;
  return connect + read + write + timeout;
}

/** Responses with the given status class, e.g. count(result, 2) for every 2xx. */
export function statusClass(result: { statuses: Record<string, number> }, leadingDigit: number): number {
  let total = 0;
  for (const [status, count] of Object.entries(result.statuses)) {
    if (status.startsWith(String(leadingDigit))) total += count;
  }
  return total;
}
