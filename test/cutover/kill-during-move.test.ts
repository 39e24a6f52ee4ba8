// SIGKILL while SKUs move between stores and while the mirror applies the
// outbox. A real server process on LMDB with an etcd mirror takes
// reservations from concurrent clients (each retrying its key until it gets
// an answer); a move starts, and at a random moment the process is killed;
// one cycle kills it with no move under way, mid-mirroring only. After each
// restart on the same stores: every move ends done or failed (rolled back),
// never half-way; every acknowledged order is there as acknowledged; a key
// whose answer was lost is decided once. Throughout, an etcd watch records
// every resume point the mirror wrote into etcd: they only ever go forward,
// so no outbox entry was applied twice across the kills. At the end every
// SKU's ledger holds exactly the units acknowledged, both ledgers are exact
// and reconcile finds no difference.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MoveView } from '../../src/cutover/moves.ts';
import type { OrderView, SkuView } from '../../src/http/views.ts';
import type { MirrorResume } from '../../src/layout.ts';
import { createEtcdClient } from '../../src/store/etcd-store.ts';
import {
  assertBothLedgersExact,
  assertReconciled,
  caughtUp,
  mirrorArgs,
  moveEnded,
  moves,
  routing,
  startMove,
} from '../support/cutover.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import {
  type Answer,
  call,
  mapConcurrent,
  NetworkFailure,
  pick,
  randomInt,
  runWorkers,
  seededRandom,
  sleep,
  testSeed,
} from '../support/load.ts';
import {
  adminKey,
  createSku,
  killSpawnedServers,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

/** Enough SKUs that moving all of them takes several groups (moveGroupSkusMax each). */
const skuCount = 140;
const initialStock = 100_000;
const workers = 16;
/** Orders each cycle acknowledges before its move starts (or, without one, before the kill is armed). */
const ordersBeforeMove = 60;
/** After the move is seen under way (or, without one, after the orders), the kill lands this much later. */
const killDelayMsMin = 0;
const killDelayMsMax = 15;
const mirroringKillDelayMsMax = 500;
const waitMsMax = 60_000;
/** The cycles: a move each (or none: a kill while only the mirror works). */
const plan: (Record<string, unknown> | undefined)[] = [
  { to: 'etcd', percent: 30 },
  undefined,
  { to: 'etcd', percent: 100 },
  { to: 'lmdb', percent: 100 },
  { to: 'etcd', percent: 60 },
];

const seed = testSeed();
const prefix = `cutover-kill-${process.pid}/`;
const data = tempDataDir('hotstock-cutover-kill');
let cluster: EtcdCluster;
const resumePoints: MirrorResume[] = [];
let stopWatching = async () => {};

before(async () => {
  cluster = await startEtcdCluster();
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  const watcher = await client.watch().key(`${prefix}mirror/lmdb`).create();
  watcher.on('put', (kv) => resumePoints.push(JSON.parse(kv.value.toString()) as MirrorResume));
  stopWatching = async () => {
    await watcher.cancel();
    client.close();
  };
});

after(async () => {
  await killSpawnedServers();
  await stopWatching();
  await cluster?.stop();
  data.remove();
});

const skuIds = Array.from({ length: skuCount }, (_, i) => `kill-move-${i}`);

interface Sent {
  body: { sku: string; qty: number; userId: string };
  /** The order id once a 201 came back. */
  id?: string;
}

/** Every key ever sent; those without an id got no answer yet. */
const sent = new Map<string, Sent>();

async function send(base: string, key: string, entry: Sent): Promise<Answer | undefined> {
  try {
    const answer = await call(base, 'POST', '/v1/orders', { body: entry.body, idempotencyKey: key });
    assert.ok(answer.status < 500, `key ${key}: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.equal(answer.status, 201, `key ${key}: ${answer.status} ${JSON.stringify(answer.body)}`);
    const id = answer.body.id as string;
    assert.ok(entry.id === undefined || entry.id === id, `key ${key} answered ${entry.id} and then ${id}`);
    entry.id = id;
    return answer;
  } catch (error) {
    if (error instanceof NetworkFailure) return undefined; // killed: the answer is unknown
    throw error;
  }
}

function acked(): number {
  let count = 0;
  for (const entry of sent.values()) if (entry.id !== undefined) count++;
  return count;
}

/** Reservations with fresh keys until the server dies. */
async function loadUntilKilled(server: ServerProcess, cycle: number, random: () => number): Promise<void> {
  let dead = false;
  void server.exited.then(() => {
    dead = true;
  });
  await runWorkers(workers, async (worker) => {
    for (let i = 0; !dead; i++) {
      const key = `c${cycle}-w${worker}-${i}`;
      const entry: Sent = {
        body: { sku: pick(random, skuIds), qty: randomInt(random, 1, 3), userId: `u${randomInt(random, 1, 500)}` },
      };
      sent.set(key, entry);
      if ((await send(server.url, key, entry)) === undefined) return;
    }
  });
}

/** Kills the server mid-move (once the move is seen under way), or mid-mirroring; says which state the move was in. */
async function killDuring(server: ServerProcess, move: Record<string, unknown> | undefined, random: () => number) {
  const deadline = Date.now() + waitMsMax;
  const target = acked() + ordersBeforeMove;
  while (acked() < target) {
    assert.ok(Date.now() < deadline, 'the load makes progress');
    await sleep(10);
  }
  let state = 'none (mirroring only)';
  if (move === undefined) await sleep(randomInt(random, killDelayMsMin, mirroringKillDelayMsMax));
  else {
    const { id } = await startMove(server.url, move);
    for (let polls = 0; polls < 1_000; polls++) {
      state = (await call<MoveView>(server.url, 'GET', `/v1/admin/routing/moves/${id}`, { key: adminKey })).body.state;
      if (state !== 'pending') break;
    }
    await sleep(randomInt(random, killDelayMsMin, killDelayMsMax));
  }
  server.child.kill('SIGKILL');
  await server.exited;
  return state;
}

/** After a restart: every move ends, the mirror catches up, acknowledged orders are there, lost answers are found. */
async function verifyAfterRestart(base: string, label: string): Promise<MoveView[]> {
  const ended = await Promise.all((await moves(base)).map((move) => moveEnded(base, move.id, waitMsMax)));
  for (const move of ended) assert.ok(['done', 'failed'].includes(move.state), `${label}: ${JSON.stringify(move)}`);
  await caughtUp(base, waitMsMax);
  await mapConcurrent([...sent], 16, async ([key, entry]) => {
    if (entry.id === undefined) {
      // The answer was lost in the kill: the same key now decides it (once: a replay if it had been created).
      assert.ok((await send(base, key, entry)) !== undefined, `${label}: key ${key} gets an answer`);
      return;
    }
    const answer = await call<OrderView>(base, 'GET', `/v1/orders/${entry.id}`);
    assert.equal(answer.status, 200, `${label}: acknowledged order ${entry.id} (key ${key}) is gone`);
    assert.deepEqual(
      { sku: answer.body.sku, qty: answer.body.qty, userId: answer.body.userId },
      entry.body,
      `${label}: order ${entry.id}`,
    );
  });
  return ended;
}

async function assertLedgersHoldTheOrders(base: string): Promise<void> {
  const held = new Map<string, number>();
  for (const entry of sent.values()) held.set(entry.body.sku, (held.get(entry.body.sku) ?? 0) + entry.body.qty);
  for (const sku of skuIds) {
    const view = (await call<SkuView>(base, 'GET', `/v1/skus/${sku}`)).body;
    assert.equal(view.reserved, held.get(sku) ?? 0, `${sku}: ${JSON.stringify(view)}`);
  }
}

test('SIGKILL during moves and mirroring: moves end done or rolled back, nothing lost, nothing applied twice', async () => {
  console.log(`# seed ${seed}`);
  const random = seededRandom(seed);
  const serve = () => spawnServer(data.dir, mirrorArgs(cluster.endpoints, prefix));
  let server = await serve();
  await mapConcurrent(skuIds, 8, (sku) => createSku(server.url, sku, { initialStock }));
  await caughtUp(server.url);
  for (const [cycle, move] of plan.entries()) {
    const load = loadUntilKilled(server, cycle, random);
    const killedIn = await killDuring(server, move, random);
    await load;
    server = await serve();
    const ended = await verifyAfterRestart(server.url, `after kill ${cycle + 1}`);
    const table = await routing(server.url);
    const resumed = server.output().includes('moves cut short by a stop go on now');
    console.log(
      `# kill ${cycle + 1} (${move ? JSON.stringify(move) : 'no move'}), move state at the kill: ${killedIn}${resumed ? ' (it went on at restart)' : ''}; moves ${ended.map((m) => m.state).join(',') || 'none'}; SKUs ${JSON.stringify(table.skus)}; ${acked()} orders acknowledged`,
    );
  }
  // A known end: everything back on LMDB, through one more move after all the kills.
  const last = await startMove(server.url, { to: 'lmdb', percent: 100 });
  assert.equal((await moveEnded(server.url, last.id)).state, 'done');
  assert.deepEqual((await routing(server.url)).skus, { lmdb: skuCount, etcd: 0 });
  await caughtUp(server.url);
  await assertLedgersHoldTheOrders(server.url);
  server.child.kill('SIGTERM');
  await server.exited;

  const forward = resumePoints.every((point, i) => {
    const previous = resumePoints[i - 1];
    if (previous === undefined) return true;
    const at = (p: MirrorResume) => [p.appliedThrough, p.partial?.seq ?? 0, p.partial?.offset ?? 0];
    const [a, b] = [at(previous), at(point)];
    return a[0]! < b[0]! || (a[0] === b[0] && (a[1]! < b[1]! || (a[1] === b[1] && a[2]! < b[2]!)));
  });
  console.log(`# ${resumePoints.length} resume points written to etcd, last ${JSON.stringify(resumePoints.at(-1))}`);
  assert.ok(resumePoints.length > plan.length, 'the mirror applied the outbox throughout');
  assert.ok(forward, 'every resume point is past the one before: no entry was applied twice');
  await assertBothLedgersExact(data.dir, cluster.endpoints, prefix);
  console.log(`# hotstock reconcile: ${await assertReconciled(data.dir, cluster.endpoints, prefix)}`);
});
