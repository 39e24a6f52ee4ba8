// Scenario 3: POST /v1/orders:batch with 100 and 1000 reservations per
// request on one hot SKU, closed loop (wrk); durable reservations/s counted
// from the SKU's ledger.
import { checkRow, createSkus, skuLedger, withHotstock } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey } from '../servers.ts';
import { runWrk, statusClass } from '../wrk.ts';

const name = '3 batch reservations';
const targetPerS = 100_000;
const batchSizes = [100, 1_000];
const connections = 8;

export const batchScenario: BenchScenario = {
  name,
  description: `POST /v1/orders:batch with ${batchSizes.join(' and ')} items, ${connections} connections, closed loop (wrk)`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 2 : 10;
    const rows: BenchRow[] = [];
    for (const batch of batchSizes) {
      const run = await withHotstock(context.serverCpu, async (server) => {
        await createSkus(server.url, ['hot'], 1_000_000_000);
        const load = await runWrk({
          cpu: context.loadCpu,
          url: server.url,
          durationS,
          connections,
          env: { BENCH_KEY: benchClientKey, BENCH_SKUS: 'hot', BENCH_BATCH: String(batch) },
        });
        return { load, ledger: await skuLedger(server.url, 'hot') };
      });
      const { load, ledger } = run.result;
      const perS = ledger.reserved / load.durationS;
      context.log(`batch ${batch}: ${perS.toFixed(0)} durable reservations/s`);
      rows.push(
        {
          scenario: `${name} (${batch})`,
          measure: 'durable reservations/s',
          value: perS,
          target: { text: `>= ${targetPerS}`, met: perS >= targetPerS },
          note: `${load.requests} requests (${load.requests - statusClass(load, 2)} non-2xx), P99 ${load.p99Ms} ms per request`,
        },
        checkRow(`${name} (${batch})`, run.check),
      );
    }
    return rows;
  },
};
