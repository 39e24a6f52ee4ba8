// Scenario 10: scenario 1's maximum load (one hot SKU with a per-user limit,
// 64 connections, closed loop) on hotstock with an etcd mirror
// (`--mirror etcd`: every commit recorded in the outbox, applied to etcd by
// the mirror worker), against the same load on hotstock without a mirror in
// the same run. Reports the throughput ratio, and the mirror's lag sampled
// from /metrics during the load: P99 in commits (revisions) and in seconds,
// and how long the backlog took to drain once the load stopped. etcd runs on
// the server CPU with hotstock, as in scenario 7; the load on the other CPU.
import { startEtcdCluster } from '../../test/support/etcd.ts';
import {
  checkLedger,
  checkRow,
  type HotSkuRun,
  mirrorLag,
  reconcileStores,
  reserveOnHotSku,
  withHotstock,
} from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { pinEtcd, startHotstock } from '../servers.ts';
import { scenarioOneLoad } from './throughput.ts';

const name = '10 etcd mirror, 1 hot SKU';
const prefix = 'bench-mirror/';
/** How often the lag is read from /metrics during the load. */
const samplePeriodMs = 200;
/** Longest the scenario waits for the mirror to drain after the load. */
const drainWaitMsMax = 300_000;
const ratioTarget = 0.8;

interface MirrorRun {
  run: HotSkuRun;
  lagRevisions: number[];
  lagSeconds: number[];
  drainMs: number;
}

/** Samples the lag until `done` settles; then waits for the mirror to drain and says how long that took. */
async function sampleLag<T>(url: string, done: Promise<T>) {
  const lagRevisions: number[] = [];
  const lagSeconds: number[] = [];
  let finished = false;
  void done.finally(() => {
    finished = true;
  });
  while (!finished) {
    const sample = await mirrorLag(url);
    lagRevisions.push(sample.revisions);
    lagSeconds.push(sample.seconds);
    await new Promise((resolve) => setTimeout(resolve, samplePeriodMs));
  }
  const result = await done;
  const drainStart = Date.now();
  while ((await mirrorLag(url)).revisions > 0 && Date.now() - drainStart < drainWaitMsMax) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { result, lagRevisions, lagSeconds, drainMs: Date.now() - drainStart };
}

async function runMirrored(context: BenchContext, durationS: number) {
  const cluster = await startEtcdCluster();
  try {
    pinEtcd(context.serverCpu, cluster);
    const mirrorArgs = ['--mirror', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', prefix];
    const server = await startHotstock({ cpu: context.serverCpu, args: mirrorArgs });
    try {
      const load = reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, ...scenarioOneLoad });
      const sampled = await sampleLag(server.url, load);
      const measured: MirrorRun = { run: sampled.result, ...sampled };
      await server.stop();
      const check = await checkLedger(server.dataDir);
      return { measured, check, reconcile: await reconcileStores(server.dataDir, mirrorArgs) };
    } finally {
      await server.stop();
      server.remove();
    }
  } finally {
    await cluster.stop();
  }
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
}

export const mirrorScenario: BenchScenario = {
  name,
  description: `scenario 1's load (POST /v1/orders, one hot SKU, maxPerUser ${scenarioOneLoad.maxPerUser}, ${scenarioOneLoad.connections} connections, wrk) on hotstock --mirror etcd; baseline: the same without a mirror, same run. Mirror lag sampled from /metrics every ${samplePeriodMs} ms`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 1 : 15;
    const plain = await withHotstock(context.serverCpu, (server) =>
      reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, ...scenarioOneLoad }),
    );
    const plainPerS = plain.result.reserved / plain.result.load.durationS;
    context.log(`hotstock without a mirror: ${plainPerS.toFixed(0)} durable reservations/s`);
    const { measured, check, reconcile } = await runMirrored(context, durationS);
    const perS = measured.run.reserved / measured.run.load.durationS;
    const ratio = perS / plainPerS;
    context.log(`hotstock --mirror etcd: ${perS.toFixed(0)} durable reservations/s (${ratio.toFixed(2)} x)`);
    return [
      {
        scenario: name,
        measure: 'durable reservations/s with a mirror vs without',
        value: perS,
        baseline: { name: 'hotstock without a mirror, reservations/s', value: plainPerS },
        target: { text: `>= ${ratioTarget} x`, met: ratio >= ratioTarget },
        note: `${ratio.toFixed(2)} x; P99 ${measured.run.load.p99Ms} ms with, ${plain.result.load.p99Ms} ms without`,
      },
      {
        scenario: name,
        measure: 'mirror lag P99, revisions (commits)',
        value: p99(measured.lagRevisions),
        note: `${measured.lagRevisions.length} samples, max ${Math.max(0, ...measured.lagRevisions)}`,
      },
      {
        scenario: name,
        measure: 'mirror lag P99, seconds',
        value: p99(measured.lagSeconds),
        note: `max ${Math.max(0, ...measured.lagSeconds).toFixed(2)} s; the backlog drained ${(measured.drainMs / 1000).toFixed(1)} s after the load`,
      },
      checkRow(name, check),
      checkRow(`${name}, no mirror`, plain.check),
      {
        scenario: name,
        measure: 'hotstock reconcile',
        value: reconcile.clean ? 1 : 0,
        target: { text: 'no differences', met: reconcile.clean },
        note: reconcile.output.split('\n')[0],
      },
    ];
  },
};
