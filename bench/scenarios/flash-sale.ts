// Scenario 2, the seed scenario: a fixed 3000 requests/s for 30 s on one hot
// SKU whose stock runs out half-way (open loop). Every request must get the
// right outcome: 201 while stock lasts, then 409 sold_out; no 5xx, no timeout.

import { checkRow, createSkus, shedCounts, skuLedger, withHotstock } from '../hotstock-api.ts';
import { runOpenLoop } from '../open-loop.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey, startBaseline } from '../servers.ts';

const name = '2 flash sale, 3000 req/s';
const rate = 3_000;
/** Generous enough that no answer should come near it; an answer later than this is a timeout. */
const timeoutMs = 10_000;
/** P99 may exceed bare Fastify's on the same schedule by this much. */
const p99AboveFloorMsMax = 5;
const connections = 256;
/** P99.9 may exceed bare Fastify's on the same schedule by this much. */
const p999AboveFloorMsMax = 15;

export const flashSaleScenario: BenchScenario = {
  name,
  description: `fixed ${rate} req/s (open loop) on one hot SKU whose stock runs out half-way`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 1 : 30;
    const stock = (rate * durationS) / 2;
    // The same schedule against the bare baseline: what the generator and HTTP alone add to the latency.
    const baselineServer = await startBaseline({ cpu: context.serverCpu });
    let baseline: Awaited<ReturnType<typeof runOpenLoop>>;
    try {
      baseline = await runOpenLoop({
        cpu: context.loadCpu,
        url: baselineServer.url,
        rate,
        durationS,
        connections,
        apiKey: benchClientKey,
        skus: ['hot'],
        timeoutMs,
      });
    } finally {
      await baselineServer.stop();
    }
    const run = await withHotstock(context.serverCpu, async (server) => {
      await createSkus(server.url, ['hot'], stock);
      const load = await runOpenLoop({
        cpu: context.loadCpu,
        url: server.url,
        rate,
        durationS,
        connections,
        apiKey: benchClientKey,
        skus: ['hot'],
        timeoutMs,
      });
      return { load, ledger: await skuLedger(server.url, 'hot'), shed: await shedCounts(server.url) };
    });
    const { load, ledger, shed } = run.result;
    const created = load.statuses['201'] ?? 0;
    const soldOut = load.codes.sold_out ?? 0;
    const serverErrors = Object.entries(load.statuses)
      .filter(([status]) => status.startsWith('5'))
      .reduce((sum, [, count]) => sum + count, 0);
    const correct =
      created === stock && soldOut === load.offered - stock && ledger.reserved === stock && ledger.available === 0;
    context.log(`${created} created, ${soldOut} sold_out, ${serverErrors} 5xx, ${load.timeouts} timeouts`);
    const note = `${load.offered} offered: ${created} x 201, ${soldOut} x sold_out, ${serverErrors} x 5xx, ${load.timeouts} timeouts, ${load.networkErrors} network errors; generator lag max ${load.generatorLagMaxMs} ms; shed: ${shed.eventLoopLag} on event-loop lag, ${shed.queue} on queue wait/depth`;
    return [
      {
        scenario: name,
        measure: 'correct outcomes %',
        value: (100 * (correct ? load.offered : created + soldOut)) / load.offered,
        target: { text: '100%, zero 5xx, zero timeouts', met: correct && serverErrors === 0 && load.timeouts === 0 },
        note,
      },
      {
        scenario: name,
        measure: 'P99 ms',
        value: load.all.p99Ms,
        baseline: { name: 'bare Fastify, same schedule', value: baseline.all.p99Ms },
        target: {
          text: `<= bare Fastify + ${p99AboveFloorMsMax} ms`,
          met: load.all.p99Ms <= baseline.all.p99Ms + p99AboveFloorMsMax,
        },
      },
      {
        scenario: name,
        measure: 'P99.9 ms',
        value: load.all.p999Ms,
        baseline: { name: 'bare Fastify, same schedule', value: baseline.all.p999Ms },
        target: {
          text: `<= bare Fastify + ${p999AboveFloorMsMax} ms`,
          met: load.all.p999Ms <= baseline.all.p999Ms + p999AboveFloorMsMax,
        },
        note: `P50 ${load.all.p50Ms} ms, max ${load.all.maxMs} ms (from each request's due time)`,
      },
      checkRow(name, run.check),
    ];
  },
};
