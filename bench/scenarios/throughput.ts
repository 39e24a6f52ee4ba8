// Scenario 1: maximum throughput of POST /v1/orders on one hot SKU with a
// per-user limit, 64 connections, closed loop (wrk), against three references
// measured in the same run with the same pinning and the same wrk settings:
// bare Fastify (no storage), the lean durable floor (Fastify + lmdb-js, two
// keys per reservation, reply after fsync) and the Redis + Lua peer (AOF
// fsynced once a second, so not durable per request). Also reports the store
// writes and version checks each reservation cost hotstock, from its counting
// store's /metrics counters.
import {
  checkRow,
  type HotSkuRun,
  hotSku,
  hotSkuStock,
  reserveOnHotSku,
  type StoreCounts,
  withHotstock,
} from '../hotstock-api.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';
import {
  benchClientKey,
  type PinnedServer,
  type ReferenceServerOptions,
  startBaseline,
  startLeanFloor,
  startRedisPeer,
} from '../servers.ts';
import { runWrk, statusClass, type WrkResult } from '../wrk.ts';

const name = '1 hot SKU, max throughput';
/**
 * Scenario 1's load, which the mirror scenario repeats with a mirror
 * attached: 64 connections on a SKU with a per-user limit of 2 (the figures
 * are for a SKU that has one), taking turns among 1,000,000 users: a user's
 * third order (the first the limit refuses) would come only after 2,000,000
 * requests, more than any run here makes, so the limit is checked on every
 * reservation but refuses none.
 */
export const scenarioOneLoad = { connections: 64, maxPerUser: 2, users: 1_000_000 } as const;
const { connections, maxPerUser, users } = scenarioOneLoad;
const peerRatioMin = 1.0;
const floorRatioTarget = 0.9;
const writesPerReservationMax = 4;
const writesPerReservationTarget = 3;
const checksPerReservationMax = 1;

interface Reference {
  label: string;
  start(options: ReferenceServerOptions): Promise<PinnedServer>;
}

const stock = { [hotSku]: hotSkuStock };
const references = {
  bare: { label: 'bare Fastify', start: startBaseline },
  floor: { label: 'lean durable floor', start: (options) => startLeanFloor(options, stock) },
  peer: { label: 'Redis + Lua peer', start: (options) => startRedisPeer(options, stock) },
} satisfies Record<string, Reference>;
type Measurements = Record<keyof typeof references, Measured>;

interface Measured {
  label: string;
  load: WrkResult;
  /** Reservations answered 201 per second (bare Fastify answers every request 201). */
  perS: number;
}

async function measureReference(context: BenchContext, reference: Reference, durationS: number): Promise<Measured> {
  const server = await reference.start({ cpu: context.serverCpu });
  try {
    const load = await runWrk({
      cpu: context.loadCpu,
      url: server.url,
      durationS,
      connections,
      env: { BENCH_KEY: benchClientKey, BENCH_SKUS: hotSku, BENCH_USERS: String(users) },
    });
    const perS = (load.statuses['201'] ?? 0) / load.durationS;
    context.log(`${reference.label}: ${perS.toFixed(0)} reservations/s`);
    return { label: reference.label, load, perS };
  } finally {
    await server.stop();
    server.remove();
  }
}

function ratioRow(perS: number, reference: Measured, target?: { ratio: number; words: string }): BenchRow {
  const ratio = perS / reference.perS;
  return {
    scenario: name,
    measure: `durable reservations/s vs ${reference.label}`,
    value: perS,
    baseline: { name: `${reference.label}, reservations/s`, value: reference.perS },
    ...(target && { target: { text: `>= ${target.ratio} x (${target.words})`, met: ratio >= target.ratio } }),
    note: `${reference.label}: ${reference.load.requests} requests, ${reference.load.requests - statusClass(reference.load, 2)} non-2xx, P99 ${reference.load.p99Ms} ms`,
  };
}

/**
 * Writes and checks per reservation, raw and beyond the SKU record each
 * batch writes once and checks once (what the targets count).
 */
function storeRows(store: StoreCounts, reserved: number): BenchRow[] {
  const per = (count: number) => (reserved > 0 ? count / reserved : 0);
  const writes = per(store.writes - store.commits);
  const checks = per(store.checks - store.commits);
  const perBatch = store.commits > 0 ? (reserved / store.commits).toFixed(1) : '-';
  const batches = `${store.commits} commits (batches), ${perBatch} reservations each`;
  return [
    {
      scenario: name,
      measure: 'store writes per reservation (beyond the per-batch SKU record)',
      value: writes,
      target: {
        text: `<= ${writesPerReservationMax} (target ${writesPerReservationTarget})`,
        met: writes <= writesPerReservationMax,
      },
      note: `raw ${per(store.writes).toFixed(2)} (${store.writes} writes); ${batches}; target ${writesPerReservationTarget} ${writes <= writesPerReservationTarget ? 'met' : 'not met'}`,
    },
    {
      scenario: name,
      measure: 'version checks per reservation (beyond the per-batch SKU record)',
      value: checks,
      target: { text: `<= ${checksPerReservationMax}`, met: checks <= checksPerReservationMax },
      note: `raw ${per(store.checks).toFixed(2)} (${store.checks} checks); SKU maxPerUser ${maxPerUser}`,
    },
  ];
}

function hotstockRows(run: HotSkuRun, { bare, floor, peer }: Measurements): BenchRow[] {
  const { load, reserved } = run;
  const perS = reserved / load.durationS;
  const limited = load.codes.per_user_limit_exceeded ?? 0;
  return [
    {
      ...ratioRow(perS, peer, { ratio: peerRatioMin, words: 'must' }),
      note: `hotstock: ${reserved} units reserved in ${load.durationS.toFixed(1)} s, ${load.requests - statusClass(load, 2)} non-2xx (${limited} per_user_limit_exceeded); peer: appendfsync everysec, not durable per request`,
    },
    ratioRow(perS, floor, { ratio: floorRatioTarget, words: 'target' }),
    ratioRow(perS, bare),
    {
      scenario: name,
      measure: 'P50 ms',
      value: load.p50Ms,
      baseline: { name: 'lean durable floor', value: floor.load.p50Ms },
      note: `bare Fastify ${bare.load.p50Ms}, Redis + Lua peer ${peer.load.p50Ms}`,
    },
    {
      scenario: name,
      measure: 'P99 ms',
      value: load.p99Ms,
      baseline: { name: 'lean durable floor', value: floor.load.p99Ms },
      note: `bare Fastify ${bare.load.p99Ms}, Redis + Lua peer ${peer.load.p99Ms}`,
    },
    ...storeRows(run.store, reserved),
  ];
}

export const throughputScenario: BenchScenario = {
  name,
  description: `POST /v1/orders on one hot SKU (maxPerUser ${maxPerUser}), ${connections} connections, closed loop (wrk); same-run references: bare Fastify, the lean durable floor (Fastify + lmdb-js, 2 keys, reply after fsync), the Redis + Lua peer (appendfsync everysec)`,
  run: async (context: BenchContext): Promise<BenchRow[]> => {
    const durationS = context.smoke ? 1 : 15;
    // One at a time, each alone on the server CPU.
    const measured = {
      bare: await measureReference(context, references.bare, durationS),
      floor: await measureReference(context, references.floor, durationS),
      peer: await measureReference(context, references.peer, durationS),
    };
    const run = await withHotstock(context.serverCpu, (server) =>
      reserveOnHotSku(server.url, { cpu: context.loadCpu, durationS, connections, maxPerUser, users }),
    );
    context.log(`hotstock: ${(run.result.reserved / run.result.load.durationS).toFixed(0)} durable reservations/s`);
    return [...hotstockRows(run.result, measured), checkRow(name, run.check)];
  },
};
