// Open-loop, fixed-rate load: request i is due at start + i / rate whether or
// not earlier ones were answered, and its latency is measured from that due
// time, so a server stall shows up as latency instead of silently lowering
// the offered rate (no coordinated omission). Runs as its own process pinned
// to the load CPU: `runOpenLoop` spawns this file, which loads, then prints
// one JSON line of results.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { resultLine, runProcess } from './process.ts';

export interface OpenLoopOptions {
  cpu: number;
  url: string;
  /** Requests per second offered. */
  rate: number;
  durationS: number;
  /** Connections the generator may open; requests beyond them queue in the generator (and it counts). */
  connections: number;
  apiKey: string;
  skus: string[];
  /** A request with no answer after this long counts as a timeout. */
  timeoutMs: number;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface OpenLoopResult {
  offered: number;
  durationS: number;
  /** Answers by HTTP status, and problem codes of the non-2xx answers. */
  statuses: Record<string, number>;
  codes: Record<string, number>;
  timeouts: number;
  networkErrors: number;
  /** Latency from due time to answer: all answers, 2xx only, 503 only. */
  all: LatencySummary;
  accepted: LatencySummary;
  shed: LatencySummary;
  /** How far behind its schedule the generator itself fell at worst (its own stall, not the server's). */
  generatorLagMaxMs: number;
}

const selfScript = fileURLToPath(import.meta.url);
const resultPrefix = 'OPEN_LOOP_RESULT ';
/** Due requests are sent in slices of at most this many per event-loop turn, so answers are read in between. */
const sendSliceMax = 256;
/**
 * A small young generation for the generator: its scavenges then pause it for
 * a few ms instead of 15-25 ms, pauses that would otherwise be counted as the
 * server's latency (measured against the bare baseline server).
 */
const generatorSemiSpace = '--max-semi-space-size=4';
/** Rounds of one request per connection before the measured schedule starts. */
const warmUpRounds = 20;

export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const run = await runProcess(process.execPath, [generatorSemiSpace, selfScript], {
    cpu: options.cpu,
    env: { OPEN_LOOP_OPTIONS: JSON.stringify(options) },
  });
  return resultLine<OpenLoopResult>(run, resultPrefix, 'open-loop generator');
}

function summary(histogram: RecordableHistogram): LatencySummary {
  const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
  if (histogram.count === 0) return { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
  return {
    count: histogram.count,
    p50Ms: ms(histogram.percentile(50)),
    p99Ms: ms(histogram.percentile(99)),
    p999Ms: ms(histogram.percentile(99.9)),
    maxMs: ms(histogram.max),
  };
}

/**
 * Opens every connection and runs the request path a few times before the
 * clock starts (GET /healthz, which changes nothing), so the schedule does not
 * begin with the generator's own connection set-up and JIT warm-up, which
 * would otherwise show up as the server's latency.
 */
async function warmUp(pool: Pool, connections: number): Promise<void> {
  for (let round = 0; round < warmUpRounds; round++) {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        const response = await pool.request({ path: '/healthz', method: 'GET' });
        await response.body.text();
      }),
    );
  }
}

async function generate(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const origin = new URL(options.url).origin;
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1 });
  const all = createHistogram();
  const accepted = createHistogram();
  const shed = createHistogram();
  const statuses: Record<string, number> = {};
  const codes: Record<string, number> = {};
  let timeouts = 0;
  let networkErrors = 0;
  let generatorLagMaxMs = 0;
  const total = Math.round(options.rate * options.durationS);
  const intervalMs = 1000 / options.rate;
  const runId = `${process.pid}-${Date.now().toString(36)}`;

  const send = async (index: number, dueMs: number): Promise<void> => {
    const body = JSON.stringify({
      sku: options.skus[index % options.skus.length],
      qty: 1,
      userId: `u${index % 100_000}`,
    });
    try {
      const response = await pool.request({
        path: '/v1/orders',
        method: 'POST',
        headers: {
          authorization: `Bearer ${options.apiKey}`,
          'content-type': 'application/json',
          'idempotency-key': `ol-${runId}-${index}`,
        },
        body,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      const text = await response.body.text();
      const latencyNs = Math.max(1, Math.round((performance.now() - dueMs) * 1e6));
      all.record(latencyNs);
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      if (response.statusCode < 300) accepted.record(latencyNs);
      else {
        if (response.statusCode === 503) shed.record(latencyNs);
        const code = (JSON.parse(text) as { code?: string }).code ?? 'none';
        codes[code] = (codes[code] ?? 0) + 1;
      }
    } catch (error) {
      const name = (error as { code?: string }).code ?? '';
      if (name.includes('TIMEOUT')) timeouts++;
      else networkErrors++;
    }
  };

  await warmUp(pool, options.connections);
  // Outstanding requests are counted, not kept: holding every promise would make the generator's own GC the latency.
  let outstanding = 0;
  let allAnswered = () => {};
  const answered = new Promise<void>((resolve) => {
    allAnswered = resolve;
  });
  const track = (request: Promise<void>) => {
    outstanding++;
    request.then(() => {
      outstanding--;
      if (outstanding === 0 && next === total) allAnswered();
    });
  };
  const startMs = performance.now();
  let next = 0;
  while (next < total) {
    const nowMs = performance.now();
    const dueCount = Math.min(total, Math.floor((nowMs - startMs) / intervalMs) + 1);
    let slice = 0;
    while (next < dueCount && slice < sendSliceMax) {
      const dueMs = startMs + next * intervalMs;
      generatorLagMaxMs = Math.max(generatorLagMaxMs, nowMs - dueMs);
      track(send(next, dueMs));
      next++;
      slice++;
    }
    const waitMs = startMs + next * intervalMs - performance.now();
    await new Promise((resolve) => (waitMs > 1 ? setTimeout(resolve, waitMs - 0.5) : setImmediate(resolve)));
  }
  if (outstanding > 0) await answered;
  await pool.close();
  return {
    offered: total,
    durationS: options.durationS,
    statuses,
    codes,
    timeouts,
    networkErrors,
    all: summary(all),
    accepted: summary(accepted),
    shed: summary(shed),
    generatorLagMaxMs: Math.round(generatorLagMaxMs * 1000) / 1000,
  };
}

if (process.env.OPEN_LOOP_OPTIONS && process.argv[1] === selfScript) {
  const result = await generate(JSON.parse(process.env.OPEN_LOOP_OPTIONS) as OpenLoopOptions);
  process.stdout.write(`${resultPrefix}${JSON.stringify(result)}\n`);
}
