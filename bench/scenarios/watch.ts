// Scenario: live stock watch. 1,000 and 10,000 SSE watchers on one hot SKU
// while 64 wrk connections reserve it, against a same-run floor: a plain TCP
// server (node:net) on the same runtime writing the same event bytes to the
// same number of sockets at the event rate the hotstock run produced.
//
// Commit-to-delivery, exactly: the commit end is the moment the server
// process's change-feed listener learns of a durable commit that wrote the
// SKU record (bench/watch-server.ts), the delivery end the moment the client
// process gets the bytes carrying that event id on one socket
// (bench/watch-clients.ts); both read `process.hrtime.bigint()`, the
// machine's CLOCK_MONOTONIC, which every process shares. The floor's commit end is just before
// its write loop. Events are sampled by id (every event for 1,000 watchers,
// every 4th for 10,000) and every (socket, sampled event) arrival counts.
// Reservation throughput with watchers is compared with the same server's,
// measured just before the watchers connected,
// RSS is the server's after a full GC, and churn opens and politely closes
// 50,000 watch connections.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/support/etcd.ts';
import { checkLedger, checkRow, createSkus, skuLedger } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchAdminKey, benchClientKey } from '../servers.ts';
import { type IpcChild, spawnIpc } from '../watch-procs.ts';
import { runWrk } from '../wrk.ts';

const name = '8 watch, 10,000 SSE clients';
const wrkConnections = 64;
const hotSku = 'hot';
const watchPath = `/v1/watch?sku=${hotSku}`;
/** Time after the load stops for the last events to arrive before latencies are read. */
const settleMs = 1_500;
const latencyRatioMax = 1.5;
const rssGrowthBytesMax = 150 * 1024 * 1024;
const throughputRatioMin = 0.7;
const churnRssRatioMax = 1.1;
const churnConcurrency = 200;
const churnWarmupCycles = 1_000;
const mib = 1024 * 1024;

interface Latency {
  sampledEvents: number;
  samples: number;
  missing: number;
  deliveries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Server side only: from each commit to the end of the first broadcast pass
 * that carried it (its bytes handed to every in-step watcher's socket).
 */
function commitToWritten(commitTimes: [number, number][], passEnds: [number, number][]) {
  const latencies: number[] = [];
  let pass = 0;
  for (const [revision, committedAt] of commitTimes) {
    while (pass < passEnds.length && passEnds[pass]![0] < revision) pass++;
    if (pass < passEnds.length) latencies.push(passEnds[pass]![1] - committedAt);
  }
  latencies.sort((a, b) => a - b);
  const at = (fraction: number) => latencies[Math.max(0, Math.ceil(fraction * latencies.length) - 1)] ?? Number.NaN;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

interface HotstockRun {
  /** Commit to the end of the pass that wrote the event to every socket, measured in the server. */
  serverWritten: { p50Ms: number; p99Ms: number };
  /** The same server, just before the watchers connected: the throughput baseline. */
  aloneReservationsPerS: number;
  reservationsPerS: number;
  /** Broadcast passes in the whole run and the time they kept the server's thread busy. */
  passes: number;
  passBusyMs: number;
  rssIdleBytes: number;
  rssWatchersBytes: number;
  eventsPerS: number;
  latency?: Latency;
  coalesced: number;
  dropped: string;
  churn?: Churn;
  check: { exact: boolean; output: string };
}

interface Churn {
  rssStartBytes: number;
  rssEndBytes: number;
  gauge: number;
  failed: number;
  seconds: number;
}

/** Connect/disconnect cycles on a server whose watchers have all left; RSS measured around them. */
async function churn(server: IpcChild, clients: IpcChild, url: string, cycles: number): Promise<Churn> {
  const run = (count: number) =>
    clients.ask<{ failed: number }>(
      { type: 'churn', url, path: watchPath, key: benchClientKey, cycles: count, concurrency: churnConcurrency },
      'churned',
    );
  await run(Math.min(churnWarmupCycles, cycles));
  const rssStartBytes = await rss(server);
  const started = performance.now();
  const { failed } = await run(cycles);
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const gauge = Number(await scrape(url, 'hotstock_watch_subscribers '));
  return { rssStartBytes, rssEndBytes: await rss(server), gauge, failed, seconds };
}

async function startServer(context: BenchContext, subscribersMax: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'hotstock-bench-watch-'));
  const args = {
    dataDir,
    port: await freePort(),
    adminKey: benchAdminKey,
    clientKey: benchClientKey,
    subscribersMax,
  };
  const server = await spawnIpc(context.serverCpu, './watch-server.ts', [JSON.stringify(args)], ['--expose-gc']);
  return { server, url: server.ready.url as string, dataDir };
}

async function rss(server: IpcChild): Promise<number> {
  return (await server.ask<{ rssBytes: number }>({ type: 'rss' }, 'rss')).rssBytes;
}

async function scrape(url: string, metric: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(metric))
    .map((line) => line.slice(metric.length).trim())
    .join(' ');
}

async function stopServer(server: IpcChild, dataDir: string): Promise<{ exact: boolean; output: string }> {
  server.child.send({ type: 'stop' });
  await server.exited;
  const check = await checkLedger(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  return check;
}

async function hotstockRun(
  context: BenchContext,
  watchers: number,
  durationS: number,
  sampleEvery: number,
  churnCycles = 0,
): Promise<HotstockRun> {
  const { server, url, dataDir } = await startServer(context, Math.max(watchers, churnConcurrency * 2));
  let clients: IpcChild | undefined;
  try {
    await createSkus(url, [hotSku], 1_000_000_000);
    const reserve = async () => {
      const before = (await skuLedger(url, hotSku)).reserved;
      const load = await runWrk({
        cpu: context.loadCpu,
        url,
        durationS,
        connections: wrkConnections,
        env: { BENCH_KEY: benchClientKey, BENCH_SKUS: hotSku },
      });
      return { load, reserved: (await skuLedger(url, hotSku)).reserved - before };
    };
    const alone = await reserve();
    const rssIdleBytes = await rss(server);
    if (watchers > 0) {
      clients = await spawnIpc(context.loadCpu, './watch-clients.ts', []);
      const connected = await clients.ask<{ count: number; failed: number }>(
        { type: 'connect', url, path: watchPath, key: benchClientKey, count: watchers, sampleEvery },
        'connected',
      );
      if (connected.count !== watchers) throw new Error(`connected ${connected.count} of ${watchers} watchers`);
    }
    const rssWatchersBytes = await rss(server);
    await server.ask({ type: 'commits' }, 'commits');
    const { load, reserved } = await reserve();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const { commitTimes, passEnds, hub } = await server.ask<{
      commitTimes: [number, number][];
      passEnds: [number, number][];
      hub: { passes: number; passBusyMs: number };
    }>({ type: 'commits' }, 'commits');
    const latency = clients ? await clients.ask<Latency>({ type: 'measure', commitTimes }, 'latency') : undefined;
    const coalesced = Number(await scrape(url, 'hotstock_watch_events_coalesced_total'));
    const dropped = await scrape(url, 'hotstock_watch_subscribers_dropped_total');
    if (clients) await clients.ask({ type: 'close' }, 'closed');
    const churned = clients && churnCycles > 0 ? await churn(server, clients, url, churnCycles) : undefined;
    clients?.child.disconnect();
    return {
      serverWritten: commitToWritten(commitTimes, passEnds),
      passes: hub.passes,
      passBusyMs: hub.passBusyMs,
      aloneReservationsPerS: alone.reserved / alone.load.durationS,
      churn: churned,
      reservationsPerS: reserved / load.durationS,
      rssIdleBytes,
      rssWatchersBytes,
      eventsPerS: commitTimes.length / load.durationS,
      latency,
      coalesced,
      dropped,
      check: await stopServer(server, dataDir),
    };
  } finally {
    clients?.kill();
    server.kill();
  }
}

async function floorRun(
  context: BenchContext,
  watchers: number,
  eventsPerS: number,
  durationS: number,
  sampleEvery: number,
): Promise<Latency> {
  const floor = await spawnIpc(context.serverCpu, './watch-floor-server.ts', []);
  const clients = await spawnIpc(context.loadCpu, './watch-clients.ts', []);
  try {
    await clients.ask({ type: 'connect', url: floor.ready.url, count: watchers, sampleEvery }, 'connected');
    const { commitTimes } = await floor.ask<{ commitTimes: [number, number][] }>(
      { type: 'start', rate: Math.max(1, eventsPerS), durationMs: durationS * 1000 },
      'done',
    );
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const latency = await clients.ask<Latency>({ type: 'measure', commitTimes }, 'latency');
    await clients.ask({ type: 'close' }, 'closed');
    return latency;
  } finally {
    clients.kill();
    floor.kill();
  }
}

export const watchScenario: BenchScenario = {
  name,
  description:
    'GET /v1/watch: 1,000 and 10,000 SSE watchers on one hot SKU while 64 connections reserve it; floor: plain node:net server, same bytes, same sockets; then 50,000 connect/disconnect cycles',
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const counts = context.smoke ? [50] : [1_000, 10_000];
    const durationS = context.smoke ? 1 : 10;
    const churnCycles = context.smoke ? 300 : 50_000;
    const judge = (met: boolean, text: string) => (context.smoke ? undefined : { text, met });
    const rows: BenchRow[] = [];
    let churnResult: Churn | undefined;

    for (const watchers of counts) {
      const label = `${name} (${watchers.toLocaleString('en-US')} watchers)`;
      const sampleEvery = watchers > 5_000 ? 4 : 1;
      // The last run's server then also takes the churn, once its watchers have left.
      const run = await hotstockRun(
        context,
        watchers,
        durationS,
        sampleEvery,
        watchers === counts.at(-1) ? churnCycles : 0,
      );
      if (run.churn) churnResult = run.churn;
      const latency = run.latency!;
      context.log(
        `${watchers} watchers: ${run.reservationsPerS.toFixed(0)} reservations/s (${run.aloneReservationsPerS.toFixed(0)} without), ${run.eventsPerS.toFixed(0)} events/s, ` +
          `P50 ${latency.p50Ms.toFixed(1)} ms, P99 ${latency.p99Ms.toFixed(1)} ms (server-side written P99 ${run.serverWritten.p99Ms.toFixed(1)} ms), RSS +${((run.rssWatchersBytes - run.rssIdleBytes) / mib).toFixed(1)} MiB`,
      );
      const floor = await floorRun(context, watchers, run.eventsPerS, durationS, sampleEvery);
      context.log(`floor, ${watchers} sockets: P50 ${floor.p50Ms.toFixed(1)} ms, P99 ${floor.p99Ms.toFixed(1)} ms`);
      const growth = run.rssWatchersBytes - run.rssIdleBytes;
      const throughputRatio = run.reservationsPerS / run.aloneReservationsPerS;
      rows.push(
        {
          scenario: label,
          measure: 'P99 commit-to-delivery ms',
          value: latency.p99Ms,
          baseline: { name: 'plain node:net floor P99 ms', value: floor.p99Ms },
          target: judge(latency.p99Ms <= latencyRatioMax * floor.p99Ms, `<= ${latencyRatioMax} x floor`),
          note:
            `P50 ${latency.p50Ms.toFixed(1)} (floor ${floor.p50Ms.toFixed(1)}), max ${latency.maxMs.toFixed(0)} ms; ` +
            `server side, commit to written to every socket: P50 ${run.serverWritten.p50Ms.toFixed(1)}, P99 ${run.serverWritten.p99Ms.toFixed(1)} ms; ` +
            `${latency.samples} arrivals of ${latency.sampledEvents} sampled events, ${latency.missing} coalesced away or late; ` +
            `${run.eventsPerS.toFixed(0)} events/s in ${run.passes} passes, ${(run.passBusyMs / Math.max(1, run.passes)).toFixed(1)} ms busy each; ` +
            `server coalesced ${run.coalesced}, dropped ${run.dropped}`,
        },
        {
          scenario: label,
          measure: 'RSS growth MiB',
          value: growth / mib,
          baseline: { name: 'RSS with no watchers MiB', value: run.rssIdleBytes / mib },
          target: watchers >= 10_000 ? judge(growth <= rssGrowthBytesMax, '<= 150 MiB') : undefined,
          note: `${(growth / watchers / 1024).toFixed(1)} KiB per watcher (after a full GC)`,
        },
        {
          scenario: label,
          measure: 'durable reservations/s',
          value: run.reservationsPerS,
          baseline: { name: 'same server just before, no watchers', value: run.aloneReservationsPerS },
          target:
            watchers >= 10_000
              ? judge(throughputRatio >= throughputRatioMin, `>= ${throughputRatioMin} x no watchers`)
              : undefined,
          note: `${throughputRatio.toFixed(2)} x`,
        },
        checkRow(label, run.check),
      );
    }

    const churn = churnResult!;
    const churnRatio = churn.rssEndBytes / churn.rssStartBytes;
    context.log(
      `churn: ${churnCycles} cycles in ${churn.seconds.toFixed(1)} s, gauge ${churn.gauge}, RSS ${(churn.rssStartBytes / mib).toFixed(1)} -> ${(churn.rssEndBytes / mib).toFixed(1)} MiB`,
    );
    const churnLabel = `${name} (churn ${churnCycles.toLocaleString('en-US')} cycles)`;
    rows.push(
      {
        scenario: churnLabel,
        measure: 'subscriber gauge after',
        value: churn.gauge,
        target: judge(churn.gauge === 0 && churn.failed === 0, '0, no failed cycle'),
        note: `${churn.failed} failed cycles; ${(churnCycles / churn.seconds).toFixed(0)} cycles/s, ${churnConcurrency} at a time`,
      },
      {
        scenario: churnLabel,
        measure: 'RSS after / before',
        value: churnRatio,
        baseline: { name: 'RSS before MiB (after 1,000 warm-up cycles)', value: churn.rssStartBytes / mib },
        target: judge(churnRatio <= churnRssRatioMax, '<= 1.10'),
        note: `after ${(churn.rssEndBytes / mib).toFixed(1)} MiB (both after a full GC), on the server of the last watch run once its watchers left`,
      },
    );
    return rows;
  },
};
