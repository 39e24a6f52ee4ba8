// Scenario: hotstock in distributed mode. A 1-member local etcd, one hot SKU,
// POST /v1/orders with 64 connections, closed loop (wrk): the maximum durable
// reservations/s through hotstock on etcd, against hotstock on the embedded
// LMDB store under the same load in the same run (the ratio), and against the
// naive way measured on the same etcd in the same run (bench/naive-cas.ts):
// 64 clients each doing get + compare-and-swap on one hot etcd key.
// On etcd's default transaction size, the same hot SKU is then served
// through two instances on the same etcd (a second one joins; the load is
// split between them, so half of it is forwarded to the SKU's owner): its
// reservations/s against the one instance's, and its 503s, which a closed
// loop must not see. etcd and every instance run on the server CPU; the
// load on the other CPU.
import { fileURLToPath } from 'node:url';
import { startEtcdCluster } from '../../test/support/etcd.ts';
import {
  checkLedger,
  checkRow,
  hotSku,
  reserveOnHotSku,
  skuLedger,
  waitClusterSettled,
  withHotstock,
} from '../hotstock-api.ts';
import { resultLine, runProcess } from '../process.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { benchClientKey, benchClusterKey, type PinnedServer, pinEtcd, startHotstock } from '../servers.ts';
import { runWrk, statusClass, type WrkResult } from '../wrk.ts';

const name = '7 etcd store, 1 hot SKU';
const connections = 64;
const naiveCasScript = fileURLToPath(new URL('../naive-cas.ts', import.meta.url));
const targetReservationsPerS = 5_000;
const targetFactorVsNaive = 100;
/** Two instances must keep this share of one instance's throughput: adding one must not make a sale worse. */
const targetTwoInstancesRatio = 0.9;
const prefix = 'bench/';
/** Load through both instances before the measured run, so the one just started is not measured cold. */
const warmUpS = 1;

interface Measured {
  load: WrkResult;
  perS: number;
}

function measured(load: WrkResult, reserved: number): Measured {
  return { load, perS: reserved / load.durationS };
}

/** etcd's default --max-txn-ops, and a raised one (etcd flag and hotstock's --etcd-max-txn-ops set alike). */
const txnOpsDefault = 128;
const txnOpsRaised = 1024;

interface TwoInstances {
  perS: number;
  /** Each instance's wrk run: the owner's and the forwarding one's. */
  loads: WrkResult[];
  unavailable: number;
}

interface EtcdRun {
  result: Measured;
  two: TwoInstances | undefined;
  /** The naive get + compare-and-swap on the same etcd, once hotstock has stopped. */
  naive: NaiveCas | undefined;
  check: { exact: boolean; output: string };
}

interface NaiveCas {
  reservations: number;
  conflicts: number;
  seconds: number;
}

/** The naive reference on `endpoint`: as many clients as wrk has connections, on the load CPU. */
async function naiveCas(context: BenchContext, endpoint: string, durationS: number): Promise<NaiveCas> {
  const args = [
    naiveCasScript,
    '--endpoint',
    endpoint,
    '--clients',
    String(connections),
    '--seconds',
    String(durationS),
  ];
  const run = await runProcess(process.execPath, args, { cpu: context.loadCpu });
  return resultLine<NaiveCas>(run, 'naive-cas ', 'the naive compare-and-swap load');
}

/**
 * The same hot SKU through two instances: a second one joins on the same
 * etcd and prefix, the shards settle, then two wrk runs (half the
 * connections each, distinct keys) load both instances at once.
 */
async function throughTwoInstances(
  context: BenchContext,
  first: PinnedServer,
  args: string[],
  durationS: number,
): Promise<TwoInstances> {
  const second = await startHotstock({ cpu: context.serverCpu, args });
  const split = (seconds: number, label: string) =>
    Promise.all(
      [first, second].map((server, i) =>
        runWrk({
          cpu: context.loadCpu,
          url: server.url,
          durationS: seconds,
          connections: connections / 2,
          env: {
            BENCH_KEY: benchClientKey,
            BENCH_SKUS: hotSku,
            BENCH_RUN: `${label}-${process.pid}-${i}-${Date.now()}`,
          },
        }),
      ),
    );
  try {
    await waitClusterSettled([first.url, second.url]);
    // The first instance has served a whole run already; the second, just started, gets its JIT warm too.
    await split(warmUpS, 'warm');
    const before = (await skuLedger(first.url, hotSku)).reserved;
    const loads = await split(durationS, 'two');
    const reserved = (await skuLedger(first.url, hotSku)).reserved - before;
    const unavailable = loads.reduce((sum, load) => sum + (load.statuses['503'] ?? 0), 0);
    return { perS: reserved / Math.max(...loads.map((load) => load.durationS)), loads, unavailable };
  } finally {
    await second.stop();
    second.remove();
  }
}

/**
 * hotstock on a fresh 1-member etcd, both pinned to the server CPU; returns the
 * load (and, when `twoInstances`, the same SKU through two) and the ledger
 * check. `maxTxnOps` is given to etcd and to hotstock alike.
 */
async function runOnEtcd(
  context: BenchContext,
  durationS: number,
  maxTxnOps: number,
  twoInstances: boolean,
): Promise<EtcdRun> {
  const cluster = await startEtcdCluster({ extraArgs: [`--max-txn-ops=${maxTxnOps}`] });
  try {
    pinEtcd(context.serverCpu, cluster);
    const etcdArgs = ['--store', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', prefix];
    const args = [...etcdArgs, '--etcd-max-txn-ops', String(maxTxnOps), '--cluster-key', benchClusterKey];
    const server = await startHotstock({ cpu: context.serverCpu, args });
    let result: Measured;
    let two: TwoInstances | undefined;
    try {
      const { load, reserved } = await reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections });
      result = measured(load, reserved);
      if (twoInstances) two = await throughTwoInstances(context, server, args, durationS);
    } finally {
      await server.stop();
      server.remove();
    }
    const naive = twoInstances ? await naiveCas(context, cluster.endpoints[0]!, durationS) : undefined;
    return { result, two, naive, check: await checkLedger(server.dataDir, etcdArgs) };
  } finally {
    await cluster.stop();
  }
}

function oneInstanceRows(label: string, etcd: EtcdRun, lmdb: Measured, naive: NaiveCas): BenchRow[] {
  const { perS, load } = etcd.result;
  const ratio = perS / lmdb.perS;
  const naivePerS = naive.reservations / naive.seconds;
  const factor = perS / naivePerS;
  const failed = load.requests - statusClass(load, 2);
  return [
    {
      scenario: label,
      measure: 'durable reservations/s',
      value: perS,
      baseline: { name: 'hotstock on LMDB, reservations/s', value: lmdb.perS },
      target: { text: `>= ${targetReservationsPerS}/s`, met: perS >= targetReservationsPerS },
      note: `${ratio.toFixed(2)} x LMDB; ${failed} non-2xx`,
    },
    {
      scenario: label,
      // The value is the same reservations/s, so the ratio column is the factor over the naive CAS.
      measure: 'durable reservations/s vs naive etcd CAS',
      value: perS,
      baseline: { name: `naive get + CAS, ${connections} clients, reservations/s`, value: naivePerS },
      target: { text: `>= ${targetFactorVsNaive} x`, met: factor >= targetFactorVsNaive },
      note: `naive: ${naive.reservations} reservations and ${naive.conflicts} failed compares in ${naive.seconds.toFixed(1)} s`,
    },
    { scenario: label, measure: 'P50 ms', value: load.p50Ms, baseline: { name: 'LMDB', value: lmdb.load.p50Ms } },
    { scenario: label, measure: 'P99 ms', value: load.p99Ms, baseline: { name: 'LMDB', value: lmdb.load.p99Ms } },
  ];
}

function twoInstancesRows(label: string, one: Measured, two: TwoInstances): BenchRow[] {
  const scenario = `${label}, 2 instances`;
  const latencies = two.loads.map((load) => `P50 ${load.p50Ms.toFixed(1)} / P99 ${load.p99Ms.toFixed(1)} ms`);
  const nonCreated = two.loads.reduce((sum, load) => sum + load.requests - (load.statuses['201'] ?? 0), 0);
  return [
    {
      scenario,
      measure: 'durable reservations/s',
      value: two.perS,
      baseline: { name: '1 instance, same etcd, same run', value: one.perS },
      target: {
        text: `>= ${targetTwoInstancesRatio} x 1 instance`,
        met: two.perS >= targetTwoInstancesRatio * one.perS,
      },
      note: `${connections / 2} connections to each; per instance ${latencies.join(', ')}; ${nonCreated} non-201`,
    },
    {
      scenario,
      measure: '503s',
      value: two.unavailable,
      target: { text: '0 in the closed loop', met: two.unavailable === 0 },
      note: JSON.stringify(Object.assign({}, ...two.loads.map((load) => load.codes))),
    },
  ];
}

export const etcdScenario: BenchScenario = {
  name,
  description: `POST /v1/orders on one hot SKU through hotstock on a 1-member etcd, ${connections} connections (wrk); baseline: hotstock on LMDB, same load; then through two instances on the same etcd, against one`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 2 : 15;
    const lmdb = await withHotstock(context.serverCpu, async (server) => {
      const { load, reserved } = await reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections });
      return measured(load, reserved);
    });
    context.log(`hotstock on LMDB: ${lmdb.result.perS.toFixed(0)} durable reservations/s`);
    const rows: BenchRow[] = [];
    let naive: NaiveCas | undefined;
    for (const maxTxnOps of [txnOpsDefault, txnOpsRaised]) {
      const etcd = await runOnEtcd(context, durationS, maxTxnOps, maxTxnOps === txnOpsDefault);
      naive ??= etcd.naive!;
      const label = `${name}, max-txn-ops ${maxTxnOps}`;
      context.log(`hotstock on etcd (max-txn-ops ${maxTxnOps}): ${etcd.result.perS.toFixed(0)} durable reservations/s`);
      rows.push(...oneInstanceRows(label, etcd, lmdb.result, naive));
      if (etcd.two !== undefined) {
        context.log(
          `through 2 instances: ${etcd.two.perS.toFixed(0)} durable reservations/s, ${etcd.two.unavailable} x 503`,
        );
        rows.push(...twoInstancesRows(label, etcd.result, etcd.two));
      }
      rows.push(checkRow(label, etcd.check));
    }
    rows.push(checkRow(`${name}, LMDB baseline`, lmdb.check));
    return rows;
  },
};
