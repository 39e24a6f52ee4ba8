// Scale: 1,000,000 orders stored. Orders are not held in memory, so the V8
// heap after a cold start stays small, and a cold start (process spawn to
// /readyz 200) stays short. The orders are loaded through the batch API.
import { Pool } from 'undici';
import { checkLedger, createSkus } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey, type PinnedServer, startHotstock } from '../servers.ts';

const name = '6 1,000,000 orders stored';
const heapTargetBytes = 100 * 1024 * 1024;
const coldStartTargetMs = 3_000;
const skuCount = 100;
const batchItems = 1_000;
const batchesInFlight = 4;

async function loadOrders(server: PinnedServer, orders: number): Promise<void> {
  const pool = new Pool(new URL(server.url).origin, { connections: batchesInFlight });
  let sent = 0;
  const worker = async (lane: number) => {
    while (sent < orders) {
      const first = sent;
      const count = Math.min(batchItems, orders - sent);
      sent += count;
      const items = Array.from({ length: count }, (_, i) => ({
        sku: `sku-${(first / batchItems + lane) % skuCount}`,
        qty: 1,
        userId: `u${(first + i) % 100_000}`,
        idempotencyKey: `scale-${first + i}`,
      }));
      const response = await pool.request({
        path: '/v1/orders:batch',
        method: 'POST',
        headers: { authorization: `Bearer ${benchClientKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ items }),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`batch load: ${response.statusCode} ${text.slice(0, 500)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: batchesInFlight }, (_, lane) => worker(lane)));
  } finally {
    await pool.close();
  }
}

/** The heap the service reports after its start-up GC (it logs it once warm when GC is exposed). */
function heapAfterWarm(output: string): number {
  for (const line of output.split('\n')) {
    if (!line.includes('"engine warm"')) continue;
    const heap = (JSON.parse(line) as { heapUsedAfterGcBytes?: number }).heapUsedAfterGcBytes;
    if (heap !== undefined) return heap;
  }
  throw new Error(`no heap figure in the server's start-up log:\n${output}`);
}

export const scaleScenario: BenchScenario = {
  name,
  description: 'loads 1,000,000 orders (batch API), restarts cold: V8 heap after GC and time to ready',
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const orders = context.smoke ? 5_000 : 1_000_000;
    const first = await startHotstock({ cpu: context.serverCpu });
    const dataDir = first.dataDir;
    try {
      await createSkus(
        first.url,
        Array.from({ length: skuCount }, (_, i) => `sku-${i}`),
        1_000_000,
      );
      const loadStartedMs = performance.now();
      await loadOrders(first, orders);
      context.log(`loaded ${orders} orders in ${((performance.now() - loadStartedMs) / 1000).toFixed(1)} s`);
      await first.stop();
      const startedMs = performance.now();
      const cold = await startHotstock({
        cpu: context.serverCpu,
        dataDir,
        args: ['--log-level', 'info'],
        env: { NODE_OPTIONS: '--expose-gc' },
      });
      const coldStartMs = performance.now() - startedMs;
      const heap = heapAfterWarm(cold.output());
      await cold.stop();
      const check = await checkLedger(dataDir);
      const mib = (bytes: number) => bytes / 1024 / 1024;
      return [
        {
          scenario: name,
          measure: 'V8 heap after GC, MiB',
          value: mib(heap),
          target: { text: `<= ${mib(heapTargetBytes)} MiB`, met: heap <= heapTargetBytes },
          note: `${orders} orders on ${skuCount} SKUs`,
        },
        {
          scenario: name,
          measure: 'cold start to ready, ms',
          value: coldStartMs,
          target: { text: `<= ${coldStartTargetMs} ms`, met: coldStartMs <= coldStartTargetMs },
          note: 'process spawn to /readyz 200',
        },
        {
          scenario: name,
          measure: 'hotstock check',
          value: check.exact ? 1 : 0,
          target: { text: 'ledger exact', met: check.exact },
          note: check.output.split('\n').at(-1),
        },
      ];
    } finally {
      await first.stop();
      first.remove();
    }
  },
};
