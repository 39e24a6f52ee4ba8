// Scenario 5: overload. First measures the sustainable rate (closed loop, the
// same server), then offers twice that rate open-loop for 20 s. Accepted
// requests must stay fast; the excess must get a fast 503 `overloaded` with
// Retry-After, and nothing may time out.
import { checkRow, createSkus, shedCounts, withHotstock } from '../hotstock-api.ts';
import { runOpenLoop } from '../open-loop.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey } from '../servers.ts';
import { runWrk } from '../wrk.ts';

const name = '5 overload, 2x sustainable';
const acceptedP99TargetMs = 50;
const timeoutMs = 10_000;
const warmUpS = 5;
/**
 * Enough connections that the excess reaches the server, as it would from
 * many clients: with too few, requests queue inside the generator, where no
 * server can shed them.
 */
const overloadConnections = 2_048;
const calibrationS = 10;

export const overloadScenario: BenchScenario = {
  name,
  description: 'twice the measured sustainable rate, open loop, on one hot SKU',
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 1 : 20;
    const run = await withHotstock(context.serverCpu, async (server) => {
      await createSkus(server.url, ['hot'], 1_000_000_000);
      // "Sustainable" is measured on a warmed server: a cold one (JIT, first commits) under-measures it by half.
      const calibrate = (durationS: number) =>
        runWrk({
          cpu: context.loadCpu,
          url: server.url,
          durationS,
          connections: 64,
          env: { BENCH_KEY: benchClientKey, BENCH_SKUS: 'hot' },
        });
      await calibrate(context.smoke ? 1 : warmUpS);
      const calibration = await calibrate(context.smoke ? 1 : calibrationS);
      const sustainable = Math.round(calibration.requestsPerS);
      context.log(`sustainable: ${sustainable} req/s; offering ${2 * sustainable} req/s`);
      const load = await runOpenLoop({
        cpu: context.loadCpu,
        url: server.url,
        rate: 2 * sustainable,
        durationS,
        connections: overloadConnections,
        apiKey: benchClientKey,
        skus: ['hot'],
        timeoutMs,
      });
      return { sustainable, load, shed: await shedCounts(server.url) };
    });
    const { sustainable, load, shed } = run.result;
    const accepted = load.statuses['201'] ?? 0;
    const shedTotal = load.codes.overloaded ?? 0;
    const other = load.all.count - accepted - shedTotal;
    return [
      {
        scenario: name,
        measure: 'accepted P99 ms',
        value: load.accepted.p99Ms,
        target: { text: `<= ${acceptedP99TargetMs} ms`, met: load.accepted.p99Ms <= acceptedP99TargetMs },
        note: `offered ${2 * sustainable}/s (sustainable ${sustainable}/s): ${accepted} accepted, ${shedTotal} x 503 overloaded (${shed.eventLoopLag} on event-loop lag, ${shed.queue} on queue wait/depth), ${other} other`,
      },
      {
        scenario: name,
        measure: '503 P99 ms',
        value: load.shed.p99Ms,
        target: {
          text: 'fast 503s, zero timeouts',
          met: load.timeouts === 0 && load.networkErrors === 0 && load.shed.p99Ms <= acceptedP99TargetMs,
        },
        note: `${load.timeouts} timeouts, ${load.networkErrors} network errors; generator lag max ${load.generatorLagMaxMs} ms`,
      },
      checkRow(name, run.check),
    ];
  },
};
