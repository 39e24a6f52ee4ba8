// Crash safety with a real server process. Several hundred clients reserve,
// pay and cancel concurrently, retrying network errors and 5xx with the same
// Idempotency-Key; at a random moment the server gets SIGKILL. After every
// restart on the same data dir: every acknowledged order and transition is
// there as acknowledged, every key ever sent maps to at most one order (and
// replays the acknowledged answer byte for byte), no SKU is oversold, and the
// offline checker finds the ledger exact. Four kill/restart cycles, then a
// final verification and a graceful stop.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { getSku, listAllOrders } from '../support/api-helpers.ts';
import { assertLedgerExact } from '../support/assertions.ts';
import {
  type Answer,
  call,
  mapConcurrent,
  pick,
  randomInt,
  runWorkers,
  seededRandom,
  testSeed,
  withRetry,
} from '../support/load.ts';
import { createSku, killSpawnedServers, type ServerProcess, spawnServer, tempDataDir } from '../support/service.ts';

// ---- bounds ------------------------------------------------------------------

const cycles = 4;
const workers = 300;
const users = 500;
/** Operations one cycle's load may start; reaching this (or the time bound) kills at once. */
const opsPerCycleMax = 3_000;
const loadMsMax = 10_000;
/** The kill lands this long after the first answer of the cycle, drawn uniformly. */
const killDelayMsMin = 100;
const killDelayMsMax = 900;
const attemptsMax = 6;
const backoffMs = 20;
const verifyConcurrency = 48;
const usersListedPerCycle = 25;

interface SkuPlan {
  sku: string;
  initialStock: number;
  maxPerUser: number | null;
  qtyMax: number;
  weight: number;
}

const skuPlans: SkuPlan[] = [
  { sku: 'crash-tiny', initialStock: 40, maxPerUser: null, qtyMax: 3, weight: 3 },
  { sku: 'crash-small', initialStock: 250, maxPerUser: null, qtyMax: 2, weight: 3 },
  { sku: 'crash-limited', initialStock: 600, maxPerUser: 2, qtyMax: 2, weight: 3 },
  { sku: 'crash-deep', initialStock: 100_000, maxPerUser: null, qtyMax: 3, weight: 2 },
];
const weightedSkus = skuPlans.flatMap((plan) => Array.from({ length: plan.weight }, () => plan));

// ---- what the clients know ---------------------------------------------------

interface ReservationBody {
  sku: string;
  qty: number;
  userId: string;
}

interface SentReservation {
  key: string;
  body: ReservationBody;
  /** The first 201 body seen for this key; every later 201 must be identical. */
  acked?: Record<string, unknown>;
  /** The last definitive rejection code, while unacknowledged. */
  rejectedWith?: string;
}

type Action = 'pay' | 'cancel';

interface SentTransition {
  key: string;
  orderId: string;
  action: Action;
  acked?: Record<string, unknown>;
}

const stateAfter: Record<Action, string> = { pay: 'paid', cancel: 'cancelled' };

class ClientBook {
  readonly reservations = new Map<string, SentReservation>();
  readonly transitions = new Map<string, SentTransition>();
  readonly orderKey = new Map<string, string>();
  readonly transitionsByOrder = new Map<string, SentTransition[]>();
  /** Acknowledged order ids, in acknowledgement order (transitions pick from these). */
  readonly ackedOrders: string[] = [];
  readonly problems: string[] = [];
  private sequence = 0;

  problem(message: string): void {
    if (this.problems.length < 50) this.problems.push(message);
  }

  newReservation(body: ReservationBody, cycle: number): SentReservation {
    const sent: SentReservation = { key: `r${cycle}-${++this.sequence}-${body.userId}`, body };
    this.reservations.set(sent.key, sent);
    return sent;
  }

  newTransition(orderId: string, action: Action, cycle: number): SentTransition {
    const sent: SentTransition = { key: `t${cycle}-${++this.sequence}-${action}`, orderId, action };
    this.transitions.set(sent.key, sent);
    const list = this.transitionsByOrder.get(orderId) ?? [];
    list.push(sent);
    this.transitionsByOrder.set(orderId, list);
    return sent;
  }

  /** Files an answer to a reservation; notes a problem if the contract does not allow it. */
  reservationAnswered(sent: SentReservation, answer: Answer): void {
    const body = answer.body;
    if (answer.status === 201) {
      const id = body.id as string;
      if (body.sku !== sent.body.sku || body.qty !== sent.body.qty || body.userId !== sent.body.userId) {
        this.problem(
          `key ${sent.key}: 201 body ${JSON.stringify(body)} does not match request ${JSON.stringify(sent.body)}`,
        );
      }
      if (sent.acked !== undefined) {
        if (JSON.stringify(sent.acked) !== JSON.stringify(body)) {
          this.problem(
            `key ${sent.key}: replay ${JSON.stringify(body)} differs from the acknowledged ${JSON.stringify(sent.acked)}`,
          );
        }
        return;
      }
      const owner = this.orderKey.get(id);
      if (owner !== undefined && owner !== sent.key)
        this.problem(`order ${id} answered for keys ${owner} and ${sent.key}`);
      sent.acked = body;
      sent.rejectedWith = undefined;
      this.orderKey.set(id, sent.key);
      this.ackedOrders.push(id);
      return;
    }
    const code = body?.code as string | undefined;
    const allowed =
      (answer.status === 409 && (code === 'sold_out' || code === 'insufficient_stock')) ||
      (answer.status === 422 && code === 'per_user_limit_exceeded');
    if (!allowed) {
      this.problem(`key ${sent.key}: unexpected ${answer.status} ${JSON.stringify(body)}`);
      return;
    }
    if (sent.acked !== undefined) {
      this.problem(
        `key ${sent.key}: acknowledged as ${sent.acked.id as string}, now answered ${answer.status} ${code}`,
      );
      return;
    }
    sent.rejectedWith = code;
  }

  transitionAnswered(sent: SentTransition, answer: Answer): void {
    const body = answer.body;
    if (answer.status === 200) {
      if (body.id !== sent.orderId) this.problem(`transition ${sent.key}: answered for order ${String(body.id)}`);
      if (sent.acked !== undefined) {
        if (JSON.stringify(sent.acked) !== JSON.stringify(body)) {
          this.problem(
            `transition ${sent.key}: replay ${JSON.stringify(body)} differs from the acknowledged ${JSON.stringify(sent.acked)}`,
          );
        }
        return;
      }
      if (body.state !== stateAfter[sent.action]) {
        this.problem(`transition ${sent.key} (${sent.action}): 200 with state ${String(body.state)}`);
      }
      sent.acked = body;
      return;
    }
    if (answer.status === 409 && body?.code === 'illegal_transition') {
      if (sent.acked !== undefined) this.problem(`transition ${sent.key}: acknowledged, now answered 409`);
      return;
    }
    this.problem(
      `transition ${sent.key} (${sent.action} ${sent.orderId}): unexpected ${answer.status} ${JSON.stringify(body)}`,
    );
  }

  /** The states an order may be in, given which transitions were acknowledged and which were only sent. */
  allowedStates(orderId: string): Set<string> {
    const sent = this.transitionsByOrder.get(orderId) ?? [];
    const ackedCancel = sent.some((t) => t.action === 'cancel' && t.acked !== undefined);
    const ackedPay = sent.some((t) => t.action === 'pay' && t.acked !== undefined);
    const anyCancel = sent.some((t) => t.action === 'cancel');
    const anyPay = sent.some((t) => t.action === 'pay');
    if (ackedCancel) return new Set(['cancelled']);
    if (ackedPay) return new Set(anyCancel ? ['paid', 'cancelled'] : ['paid']);
    const states = new Set(['created']);
    if (anyPay) states.add('paid');
    if (anyCancel) states.add('cancelled');
    return states;
  }
}

// ---- talking to the server ---------------------------------------------------

function sendReservation(base: string, sent: SentReservation): Promise<Answer> {
  return call(base, 'POST', '/v1/orders', { body: sent.body, idempotencyKey: sent.key });
}

function sendTransition(base: string, sent: SentTransition): Promise<Answer> {
  // An empty JSON object: the contract says transitions take no body, and `{}` is the tolerated form.
  return call(base, 'POST', `/v1/orders/${encodeURIComponent(sent.orderId)}/${sent.action}`, {
    body: {},
    idempotencyKey: sent.key,
  });
}

interface CycleStats {
  started: number;
  answered: number;
  unknown: number;
  inFlightAtKill: number;
  killAfterMs: number;
}

/** Runs the load until the SIGKILL lands; returns once every worker has stopped. */
async function loadUntilKilled(
  server: ServerProcess,
  book: ClientBook,
  random: () => number,
  cycle: number,
): Promise<CycleStats> {
  const stats: CycleStats = { started: 0, answered: 0, unknown: 0, inFlightAtKill: 0, killAfterMs: 0 };
  const killDelayMs = randomInt(random, killDelayMsMin, killDelayMsMax);
  const startedMs = performance.now();
  let killed = false;
  let inFlight = 0;
  let killTimer: NodeJS.Timeout | undefined;
  const kill = () => {
    if (killed) return;
    killed = true;
    stats.inFlightAtKill = inFlight;
    stats.killAfterMs = Math.round(performance.now() - startedMs);
    server.child.kill('SIGKILL');
  };
  const firstAnswer = () => {
    killTimer ??= setTimeout(kill, killDelayMs);
  };
  const stop = () => killed;
  try {
    await runWorkers(workers, async () => {
      while (!killed) {
        // The budget bounds the keys a cycle adds; running out of it is also a moment to kill, mid-flight.
        if (stats.started >= opsPerCycleMax || performance.now() - startedMs >= loadMsMax) {
          kill();
          break;
        }
        stats.started++;
        inFlight++;
        try {
          const roll = random();
          if (roll < 0.22 && book.ackedOrders.length > 0) {
            const orderId = pick(random, book.ackedOrders);
            const sent = book.newTransition(orderId, roll < 0.12 ? 'pay' : 'cancel', cycle);
            const outcome = await withRetry(() => sendTransition(server.url, sent), { attemptsMax, backoffMs, stop });
            if (outcome.answer !== undefined && outcome.answer.status < 500) {
              stats.answered++;
              book.transitionAnswered(sent, outcome.answer);
            } else if (!killed) book.problem(`transition ${sent.key}: no answer after ${outcome.attempts} attempts`);
            else stats.unknown++;
          } else {
            const plan = pick(random, weightedSkus);
            const body = {
              sku: plan.sku,
              qty: randomInt(random, 1, plan.qtyMax),
              userId: `u${randomInt(random, 1, users)}`,
            };
            const sent = book.newReservation(body, cycle);
            const outcome = await withRetry(() => sendReservation(server.url, sent), { attemptsMax, backoffMs, stop });
            if (outcome.answer !== undefined && outcome.answer.status < 500) {
              stats.answered++;
              book.reservationAnswered(sent, outcome.answer);
            } else if (!killed) book.problem(`reservation ${sent.key}: no answer after ${outcome.attempts} attempts`);
            else stats.unknown++;
          }
        } finally {
          inFlight--;
        }
        firstAnswer();
      }
    });
  } finally {
    clearTimeout(killTimer);
    kill();
  }
  await server.exited;
  return stats;
}

/** Everything a restarted server must still say, checked before and after every key is re-sent. */
async function verify(base: string, book: ClientBook, random: () => number, label: string): Promise<void> {
  const acked = [...book.reservations.values()].filter((sent) => sent.acked !== undefined);

  // 1. Every acknowledged order is there, as acknowledged, in a state its acknowledged transitions allow.
  await mapConcurrent(acked, verifyConcurrency, async (sent) => {
    const id = sent.acked!.id as string;
    const answer = await call<OrderView>(base, 'GET', `/v1/orders/${encodeURIComponent(id)}`);
    assert.equal(answer.status, 200, `${label}: acknowledged order ${id} (key ${sent.key}) is gone: ${answer.status}`);
    const order = answer.body;
    assert.deepEqual(
      { id: order.id, sku: order.sku, qty: order.qty, userId: order.userId },
      { id, ...sent.body },
      `${label}: order ${id} does not match what was acknowledged`,
    );
    const allowed = book.allowedStates(id);
    assert.ok(allowed.has(order.state), `${label}: order ${id} is ${order.state}; allowed: ${[...allowed].join(', ')}`);
  });

  // 2. Re-send every key ever sent, same body: acknowledged ones replay their answer, the rest are decided once.
  const resend = { attemptsMax, backoffMs: 50 };
  await mapConcurrent([...book.reservations.values()], verifyConcurrency, async (sent) => {
    const outcome = await withRetry(() => sendReservation(base, sent), resend);
    assert.ok(outcome.answer && outcome.answer.status < 500, `${label}: re-sent key ${sent.key} got no answer`);
    book.reservationAnswered(sent, outcome.answer);
  });
  await mapConcurrent([...book.transitions.values()], verifyConcurrency, async (sent) => {
    const outcome = await withRetry(() => sendTransition(base, sent), resend);
    assert.ok(outcome.answer && outcome.answer.status < 500, `${label}: re-sent transition ${sent.key} got no answer`);
    book.transitionAnswered(sent, outcome.answer);
  });
  assert.deepEqual(book.problems, [], `${label}: answers the contract does not allow`);

  // 3. The store holds exactly the orders the keys name: one per acknowledged key, none without a key.
  const orders = await listAllOrders(base);
  const listed = new Map(orders.map((order) => [order.id, order]));
  assert.equal(listed.size, orders.length, `${label}: the listing repeats orders`);
  const keyed = [...book.reservations.values()].filter((sent) => sent.acked !== undefined);
  assert.equal(book.orderKey.size, keyed.length, `${label}: two keys share an order`);
  const orphans = orders.filter((order) => !book.orderKey.has(order.id)).map((order) => order.id);
  assert.deepEqual(orphans, [], `${label}: orders no idempotency key accounts for`);
  for (const sent of keyed) {
    const order = listed.get(sent.acked!.id as string);
    assert.ok(order, `${label}: order ${sent.acked!.id as string} (key ${sent.key}) missing from the listing`);
    assert.deepEqual({ sku: order.sku, qty: order.qty, userId: order.userId }, sent.body);
  }
  const perUserSku = (items: { sku: string; userId: string }[]) => {
    const counts = new Map<string, number>();
    for (const { sku, userId } of items) counts.set(`${userId}/${sku}`, (counts.get(`${userId}/${sku}`) ?? 0) + 1);
    return counts;
  };
  assert.deepEqual(
    perUserSku(orders),
    perUserSku(keyed.map((sent) => sent.body)),
    `${label}: orders per (user, SKU) differ from the keys that got 201`,
  );

  // 4. Per-user listings (the user index) agree with the full listing for a sample of users.
  for (let i = 0; i < usersListedPerCycle; i++) {
    const userId = `u${randomInt(random, 1, users)}`;
    const mine = await listAllOrders(base, { userId });
    assert.deepEqual(
      mine.map((order) => order.id).sort(),
      orders
        .filter((order) => order.userId === userId)
        .map((order) => order.id)
        .sort(),
      `${label}: user index for ${userId} disagrees with the orders`,
    );
  }

  // 5. The ledger: never oversold, and reserved/sold are exactly what the orders hold.
  for (const plan of skuPlans) {
    const sku = await getSku(base, plan.sku);
    const mine = orders.filter((order) => order.sku === plan.sku);
    const sum = (states: string[]) =>
      mine.filter((order) => states.includes(order.state)).reduce((total, order) => total + order.qty, 0);
    assert.equal(sku.total, plan.initialStock, `${label}: ${plan.sku} total changed`);
    assert.ok(sku.sold + sku.reserved <= sku.total, `${label}: ${plan.sku} oversold: ${JSON.stringify(sku)}`);
    assert.equal(sku.available, sku.total - sku.reserved - sku.sold, `${label}: ${plan.sku} available`);
    assert.equal(sku.reserved, sum(['created']), `${label}: ${plan.sku} reserved vs created orders`);
    assert.equal(sku.sold, sum(['paid', 'shipped', 'completed']), `${label}: ${plan.sku} sold vs paid orders`);
    if (plan.maxPerUser !== null) {
      const held = new Map<string, number>();
      for (const order of mine) {
        if (['created', 'paid', 'shipped', 'completed'].includes(order.state))
          held.set(order.userId, (held.get(order.userId) ?? 0) + order.qty);
      }
      for (const [userId, units] of held)
        assert.ok(units <= plan.maxPerUser, `${label}: ${userId} holds ${units} of ${plan.sku}`);
    }
  }
}

test('acknowledged orders survive SIGKILL at random moments under concurrent load', { timeout: 120_000 }, async (t) => {
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (replay the choices with HOTSTOCK_TEST_SEED=${seed})`);
  const random = seededRandom(seed);
  const { dir, remove } = tempDataDir('hotstock-kill9');
  let server: ServerProcess | undefined;
  t.after(async () => {
    // Also a server whose start the test's timeout interrupted, which `server` does not hold yet.
    await killSpawnedServers();
    remove();
  });
  const book = new ClientBook();
  const testStartedMs = performance.now();

  server = await spawnServer(dir);
  for (const plan of skuPlans) {
    await createSku(server.url, plan.sku, {
      initialStock: plan.initialStock,
      maxPerUser: plan.maxPerUser,
      color: plan.sku,
    });
  }

  for (let cycle = 1; cycle <= cycles; cycle++) {
    const stats = await loadUntilKilled(server, book, random, cycle);
    t.diagnostic(
      `cycle ${cycle}: killed after ${stats.killAfterMs} ms with ${stats.inFlightAtKill} requests in flight; ` +
        `${stats.started} operations sent, ${stats.answered} answered, ${stats.unknown} left without an answer`,
    );
    assert.ok(stats.inFlightAtKill > 0, `cycle ${cycle}: the kill landed with nothing in flight`);
    assert.deepEqual(book.problems, [], `cycle ${cycle}: answers the contract does not allow`);
    await assertLedgerExact(dir, `after kill ${cycle}`);

    server = await spawnServer(dir);
    await verify(server.url, book, random, `restart ${cycle}`);
  }

  // A last look after a graceful stop: the checker agrees, and a fresh start still serves every order.
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, 'graceful stop after the last cycle');
  await assertLedgerExact(dir, 'after the graceful stop');

  const soldOut = skuPlans.filter((plan) => plan.initialStock <= 250).map((plan) => plan.sku);
  server = await spawnServer(dir);
  const skus = await Promise.all(soldOut.map((sku) => getSku(server!.url, sku)));
  const acked = [...book.reservations.values()].filter((sent) => sent.acked !== undefined).length;
  t.diagnostic(
    `${book.reservations.size} reservation keys (${acked} orders), ${book.transitions.size} transition keys; ` +
      `small SKUs ${skus.map((sku) => `${sku.sku} ${sku.reserved + sku.sold}/${sku.total}`).join(', ')}; ` +
      `${Math.round(performance.now() - testStartedMs)} ms`,
  );
  await verify(server.url, book, random, 'final restart');
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
  await assertLedgerExact(dir, 'final');
});
