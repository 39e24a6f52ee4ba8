// Scenario 1: maximum throughput of POST /v1/orders on one hot SKU, 64
// connections, closed loop (wrk), against the same-run bare-Fastify baseline.
import { checkRow, reserveOnHotSku, withHotstock } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey, startBaseline } from '../servers.ts';
import { runWrk, statusClass } from '../wrk.ts';

const name = '1 hot SKU, max throughput';
const connections = 64;
const targetRatio = 0.85;

export const throughputScenario: BenchScenario = {
  name,
  description: `POST /v1/orders on one hot SKU, ${connections} connections, closed loop (wrk); baseline: bare Fastify`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 1 : 15;
    const baselineServer = await startBaseline(context.serverCpu);
    let baseline: Awaited<ReturnType<typeof runWrk>>;
    try {
      baseline = await runWrk({
        cpu: context.loadCpu,
        url: baselineServer.url,
        durationS,
        connections,
        env: { BENCH_KEY: benchClientKey, BENCH_SKUS: 'hot' },
      });
    } finally {
      await baselineServer.stop();
    }
    context.log(`baseline: ${baseline.requestsPerS.toFixed(0)} req/s`);
    const run = await withHotstock(context.serverCpu, (server) =>
      reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections }),
    );
    const { load, reserved } = run.result;
    const perS = reserved / load.durationS;
    const ratio = perS / baseline.requestsPerS;
    context.log(`hotstock: ${perS.toFixed(0)} durable reservations/s (${ratio.toFixed(2)} x baseline)`);
    const failed = load.requests - statusClass(load, 2);
    return [
      {
        scenario: name,
        measure: 'durable reservations/s',
        value: perS,
        baseline: { name: 'bare Fastify req/s', value: baseline.requestsPerS },
        target: { text: `>= ${targetRatio} x baseline`, met: ratio >= targetRatio },
        note: `${reserved} units reserved in ${load.durationS.toFixed(1)} s; ${failed} non-2xx`,
      },
      {
        scenario: name,
        measure: 'P50 ms',
        value: load.p50Ms,
        baseline: { name: 'bare Fastify', value: baseline.p50Ms },
      },
      {
        scenario: name,
        measure: 'P99 ms',
        value: load.p99Ms,
        baseline: { name: 'bare Fastify', value: baseline.p99Ms },
      },
      checkRow(name, run.check),
    ];
  },
};
