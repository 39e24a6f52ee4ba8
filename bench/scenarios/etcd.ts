// Scenario: hotstock in distributed mode. A 1-member local etcd, one hot SKU,
// POST /v1/orders with 64 connections, closed loop (wrk): the maximum durable
// reservations/s through hotstock on etcd, against hotstock on the embedded
// LMDB store under the same load in the same run (the ratio), and against the
// naive figure measured on this machine class (ARCHITECTURE.md): 64 clients doing
// get + compare-and-swap on one hot etcd key reach 37 reservations/s.
// etcd runs on the server CPU with hotstock; the load on the other CPU.
import { execFileSync } from 'node:child_process';
import { startEtcdCluster } from '../../test/support/etcd.ts';
import { checkLedger, checkRow, reserveOnHotSku, withHotstock } from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import { startHotstock } from '../servers.ts';
import { statusClass, type WrkResult } from '../wrk.ts';

const name = '7 etcd store, 1 hot SKU';
const connections = 64;
/** Measured (ARCHITECTURE.md): 64 clients, get + compare-and-swap on one hot etcd key. */
const naiveCasReservationsPerS = 37;
const targetReservationsPerS = 5_000;
const targetFactorVsNaive = 100;
const prefix = 'bench/';

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

/**
 * hotstock on a fresh 1-member etcd, both pinned to the server CPU; returns the
 * load and the ledger check. `maxTxnOps` is given to etcd and to hotstock alike.
 */
async function runOnEtcd(context: BenchContext, durationS: number, maxTxnOps: number) {
  const cluster = await startEtcdCluster({ extraArgs: [`--max-txn-ops=${maxTxnOps}`] });
  try {
    for (const member of cluster.members) {
      execFileSync('taskset', ['-pc', String(context.serverCpu), String(member.process!.pid)], { stdio: 'ignore' });
    }
    const args = ['--store', 'etcd', '--etcd-endpoints', cluster.endpoints.join(','), '--etcd-prefix', prefix];
    args.push('--etcd-max-txn-ops', String(maxTxnOps));
    const server = await startHotstock({ cpu: context.serverCpu, args });
    let result: Measured;
    try {
      const { load, reserved } = await reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections });
      result = measured(load, reserved);
    } finally {
      await server.stop();
      server.remove();
    }
    const check = await checkLedger(server.dataDir, [
      '--store',
      'etcd',
      '--etcd-endpoints',
      cluster.endpoints.join(','),
      '--etcd-prefix',
      prefix,
    ]);
    return { result, check };
  } finally {
    await cluster.stop();
  }
}

export const etcdScenario: BenchScenario = {
  name,
  description: `POST /v1/orders on one hot SKU through hotstock on a 1-member etcd, ${connections} connections (wrk); baseline: hotstock on LMDB, same load`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 2 : 15;
    const lmdb = await withHotstock(context.serverCpu, async (server) => {
      const { load, reserved } = await reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections });
      return measured(load, reserved);
    });
    context.log(`hotstock on LMDB: ${lmdb.result.perS.toFixed(0)} durable reservations/s`);
    const rows: BenchRow[] = [];
    for (const maxTxnOps of [txnOpsDefault, txnOpsRaised]) {
      const etcd = await runOnEtcd(context, durationS, maxTxnOps);
      const { perS, load } = etcd.result;
      const ratio = perS / lmdb.result.perS;
      const factor = perS / naiveCasReservationsPerS;
      const label = `${name}, max-txn-ops ${maxTxnOps}`;
      context.log(
        `hotstock on etcd (max-txn-ops ${maxTxnOps}): ${perS.toFixed(0)} durable reservations/s (${ratio.toFixed(2)} x LMDB, ${factor.toFixed(0)} x naive CAS)`,
      );
      const failed = load.requests - statusClass(load, 2);
      rows.push(
        {
          scenario: label,
          measure: 'durable reservations/s',
          value: perS,
          baseline: { name: 'hotstock on LMDB, reservations/s', value: lmdb.result.perS },
          target: { text: `>= ${targetReservationsPerS}/s`, met: perS >= targetReservationsPerS },
          note: `${ratio.toFixed(2)} x LMDB; ${failed} non-2xx`,
        },
        {
          scenario: label,
          measure: 'x naive etcd CAS',
          value: factor,
          baseline: {
            name: 'naive get + CAS, reservations/s (measured, ARCHITECTURE.md)',
            value: naiveCasReservationsPerS,
          },
          target: { text: `>= ${targetFactorVsNaive} x`, met: factor >= targetFactorVsNaive },
        },
        {
          scenario: label,
          measure: 'P50 ms',
          value: load.p50Ms,
          baseline: { name: 'LMDB', value: lmdb.result.load.p50Ms },
        },
        {
          scenario: label,
          measure: 'P99 ms',
          value: load.p99Ms,
          baseline: { name: 'LMDB', value: lmdb.result.load.p99Ms },
        },
        checkRow(label, etcd.check),
      );
    }
    rows.push(checkRow(`${name}, LMDB baseline`, lmdb.check));
    return rows;
  },
};
