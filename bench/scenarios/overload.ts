// Scenario 5: overload offered as a crowd offers it, with far more clients
// than any server here can answer in time: wrk keeps 4,096 connections busy
// on one hot SKU (stock that never runs out), against bare Fastify and then
// hotstock, same duration, same pinning, both warmed the same way first. By
// Little's law no server can answer 4,096 waiting clients faster than 4,096
// divided by its answer rate, so bare Fastify's P99 at the same concurrency is
// the floor: hotstock should shed what it cannot serve in time with a fast
// 503 `overloaded`, keeping the P99 of all its answers (201s and 503s) near
// that floor, with no more socket errors (timeouts included) than it.
import { checkRow, createSkus, hotSku, hotSkuStock, shedCounts, withHotstock } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey, startBaseline } from '../servers.ts';
import { runWrk, socketErrors, statusClass, type WrkResult } from '../wrk.ts';

const name = '5 overload, 4,096 connections';
const connections = 4_096;
const p99RatioMax = 2;
/**
 * Open files for wrk and each server: one socket per connection plus the
 * process's own files (LMDB, pipes, listening socket), with room to spare.
 */
const fileDescriptorsMax = 2 * connections;
/** Closed-loop warm-up (JIT, first commits) at an ordinary concurrency before the overload. */
const warmUpConnections = 64;
const warmUpS = 5;

/** Warms the server, then offers the overload; both through wrk pinned to the load CPU. */
async function overload(context: BenchContext, url: string, durationS: number): Promise<WrkResult> {
  const load = (connections: number, durationS: number) =>
    runWrk({
      cpu: context.loadCpu,
      url,
      durationS,
      connections,
      fileDescriptorsMax,
      env: { BENCH_KEY: benchClientKey, BENCH_SKUS: hotSku },
    });
  await load(warmUpConnections, context.smoke ? 1 : warmUpS);
  return load(connections, durationS);
}

async function overloadBareFastify(context: BenchContext, durationS: number): Promise<WrkResult> {
  const server = await startBaseline({ cpu: context.serverCpu, fileDescriptorsMax });
  try {
    return await overload(context, server.url, durationS);
  } finally {
    await server.stop();
  }
}

function errorsText(load: WrkResult): string {
  const { connect, read, write, timeout } = load.errors;
  return `connect ${connect}, read ${read}, write ${write}, timeout ${timeout}`;
}

function answersText(load: WrkResult): string {
  const created = load.statuses['201'] ?? 0;
  const overloaded = load.codes.overloaded ?? 0;
  const other = load.requests - created - overloaded;
  return `${load.requests} answers in ${load.durationS.toFixed(1)} s (${(load.requests / load.durationS).toFixed(0)}/s): ${created} x 201, ${overloaded} x 503 overloaded, ${other} other`;
}

export const overloadScenario: BenchScenario = {
  name,
  description: `POST /v1/orders on one hot SKU from ${connections} connections, closed loop (wrk); baseline: bare Fastify under the same load`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    // Even a smoke run needs a few seconds: on a busy machine 4,096 connections may not all be answered in one.
    const durationS = context.smoke ? 3 : 20;
    const bare = await overloadBareFastify(context, durationS);
    context.log(`bare Fastify: P99 ${bare.p99Ms} ms, ${socketErrors(bare)} socket errors`);
    const run = await withHotstock(
      context.serverCpu,
      async (server) => {
        await createSkus(server.url, [hotSku], hotSkuStock);
        const load = await overload(context, server.url, durationS);
        return { load, shed: await shedCounts(server.url) };
      },
      { fileDescriptorsMax },
    );
    const { load, shed } = run.result;
    context.log(`hotstock: P99 ${load.p99Ms} ms, ${socketErrors(load)} socket errors`);
    const bareOther = bare.requests - statusClass(bare, 2);
    return [
      {
        scenario: name,
        measure: 'P99 ms, all answers',
        value: load.p99Ms,
        baseline: { name: `bare Fastify, ${connections} connections`, value: bare.p99Ms },
        target: { text: `<= ${p99RatioMax} x bare Fastify`, met: load.p99Ms <= p99RatioMax * bare.p99Ms },
        note: `hotstock: ${answersText(load)}; shed ${shed.eventLoopLag} on event-loop lag, ${shed.queue} on queue wait/depth; P50 ${load.p50Ms}, P99.9 ${load.p999Ms}, max ${load.maxMs} ms`,
      },
      {
        scenario: name,
        measure: 'socket errors',
        value: socketErrors(load),
        baseline: { name: 'bare Fastify', value: socketErrors(bare) },
        target: { text: '<= bare Fastify', met: socketErrors(load) <= socketErrors(bare) },
        note: `hotstock: ${errorsText(load)}; bare Fastify: ${errorsText(bare)}; bare Fastify: ${bare.requests} answers (${(bare.requests / bare.durationS).toFixed(0)}/s), ${bareOther} non-2xx, P50 ${bare.p50Ms} ms`,
      },
      checkRow(name, run.check),
    ];
  },
};
