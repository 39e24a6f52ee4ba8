// Scenario 4: 10,000 SKUs under uniform traffic: all reservations, then a
// 90/10 mix of reads (GET /v1/skus/{id}) and reservations; closed loop (wrk).
import { checkRow, createSkus, withHotstock } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey } from '../servers.ts';
import { runWrk, statusClass } from '../wrk.ts';

const name = '4 many SKUs, uniform';
const connections = 64;
const mixes = [
  { label: 'reserve only', readPercent: 0 },
  { label: '90% read / 10% reserve', readPercent: 90 },
];

export const catalogScenario: BenchScenario = {
  name,
  description: `10,000 SKUs, uniform traffic, ${connections} connections: reservations only, then 90/10 read/reserve`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const skuCount = context.smoke ? 200 : 10_000;
    const durationS = context.smoke ? 2 : 10;
    const skuIds = Array.from({ length: skuCount }, (_, i) => `sku-${i}`);
    const run = await withHotstock(context.serverCpu, async (server) => {
      await createSkus(server.url, skuIds, 1_000_000);
      const results = [];
      for (const mix of mixes) {
        const load = await runWrk({
          cpu: context.loadCpu,
          url: server.url,
          durationS,
          connections,
          env: {
            BENCH_KEY: benchClientKey,
            BENCH_SKU_COUNT: String(skuCount),
            BENCH_SKU_PREFIX: 'sku-',
            BENCH_READ_PERCENT: String(mix.readPercent),
          },
        });
        context.log(`${mix.label}: ${load.requestsPerS.toFixed(0)} req/s`);
        results.push({ mix, load });
      }
      return results;
    });
    const rows: BenchRow[] = run.result.map(({ mix, load }) => ({
      scenario: `${name} (${mix.label})`,
      measure: 'requests/s',
      value: load.requestsPerS,
      note: `${skuCount} SKUs; P50 ${load.p50Ms} ms, P99 ${load.p99Ms} ms; ${load.requests - statusClass(load, 2)} non-2xx`,
    }));
    rows.push(checkRow(name, run.check));
    return rows;
  },
};
