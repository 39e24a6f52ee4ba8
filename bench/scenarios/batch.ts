// Scenario 3: POST /v1/orders:batch with 100 and 1000 reservations per
// request on one hot SKU, closed loop (wrk); durable reservations/s counted
// from the SKU's ledger.
import { checkRow, reserveOnHotSku, withHotstock } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { statusClass } from '../wrk.ts';

const name = '3 batch reservations';
const targetPerS = 100_000;
const batchSizes = [100, 1_000];
const connections = 8;

export const batchScenario: BenchScenario = {
  name,
  description: `POST /v1/orders:batch with ${batchSizes.join(' and ')} items, ${connections} connections, closed loop (wrk)`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 1 : 10;
    const rows: BenchRow[] = [];
    for (const batch of batchSizes) {
      const run = await withHotstock(context.serverCpu, (server) =>
        reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections, batch }),
      );
      const { load, reserved } = run.result;
      const perS = reserved / load.durationS;
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
