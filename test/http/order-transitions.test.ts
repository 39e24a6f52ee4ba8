// The order state machine over real HTTP: every (state × action) pair for the
// four transition endpoints, reservation expiry (before and after the sweep),
// and how each transition moves the SKU's stock ledger. The expected table is
// written out from docs/api.md ("Orders: read, list, transition"), not
// derived from src/domain.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OrderView } from '../../src/http/views.ts';
import { freshSku, getOrder, getSku, ledger, nextSkuId, reserveOk, transition } from '../support/api-helpers.ts';
import { assertProblem } from '../support/assertions.ts';
import { api, createSku, reserve, startTestService, type TestService } from '../support/service.ts';

type State = 'created' | 'paid' | 'shipped' | 'completed' | 'cancelled' | 'expired';
type Action = 'pay' | 'ship' | 'complete' | 'cancel';

const states: readonly State[] = ['created', 'paid', 'shipped', 'completed', 'cancelled', 'expired'];
const actions: readonly Action[] = ['pay', 'ship', 'complete', 'cancel'];

/** Units in every order these tests make, and the stock each test's SKU starts with. */
const qty = 2;
const initialStock = 10;
/** The shortest reservation TTL the service accepts; tests that need expiry wait just past it. */
const shortTtlMs = 1_000;

/** Legal (state, action) pairs from docs/api.md: the next state and the ledger change for `qty` units. */
interface Legal {
  to: State;
  reserved: number;
  sold: number;
}
const legal: Partial<Record<State, Partial<Record<Action, Legal>>>> = {
  created: {
    pay: { to: 'paid', reserved: -qty, sold: +qty },
    cancel: { to: 'cancelled', reserved: -qty, sold: 0 },
  },
  paid: {
    ship: { to: 'shipped', reserved: 0, sold: 0 },
    cancel: { to: 'cancelled', reserved: 0, sold: -qty },
  },
  shipped: {
    complete: { to: 'completed', reserved: 0, sold: 0 },
  },
};

/** The actions that take a fresh `created` order to each state (expired: the sweeper, not an action). */
const pathTo: Record<Exclude<State, 'expired'>, Action[]> = {
  created: [],
  paid: ['pay'],
  shipped: ['pay', 'ship'],
  completed: ['pay', 'ship', 'complete'],
  cancelled: ['cancel'],
};

// `transition` sends the empty JSON object the schema tolerates (docs/api.md says
// transitions take no body); a separate test below checks that a body-less POST
// works too, so one defect does not mask the whole table.

/** Order and SKU as the API shows them, with the order's ETag: the "nothing changed" baseline. */
async function snapshot(base: string, orderId: string, sku: string) {
  const order = await getOrder(base, orderId);
  assert.equal(order.status, 200, JSON.stringify(order.body));
  return { order: order.body, etag: order.headers.get('etag'), sku: await getSku(base, sku) };
}

/** A fresh `created` order of `qty` units. */
const createdOrder = (base: string, sku: string, userId = 'u-transitions'): Promise<OrderView> =>
  reserveOk(base, sku, qty, userId);

/** Brings a fresh order to `state` through the API, checking each step succeeds. */
async function orderIn(base: string, state: Exclude<State, 'expired'>, label: string) {
  const sku = await freshSku(base, `tr-${label}`, initialStock);
  const order = await createdOrder(base, sku);
  for (const step of pathTo[state]) {
    const response = await transition(base, order.id, step);
    assert.equal(response.status, 200, `setting up ${state}: ${step} -> ${JSON.stringify(response.body)}`);
  }
  return { sku, orderId: order.id };
}

function ledgerFor(state: State): { reserved: number; sold: number } {
  return {
    reserved: state === 'created' ? qty : 0,
    sold: state === 'paid' || state === 'shipped' || state === 'completed' ? qty : 0,
  };
}

/** Applies `action` and checks the outcome against the table in docs/api.md. */
async function checkCell(base: string, state: State, action: Action, orderId: string, sku: string): Promise<void> {
  const before = await snapshot(base, orderId, sku);
  assert.equal(before.order.state, state, 'the order is in the state under test');
  // The ledger is exactly this order's holding before the action.
  const held = ledgerFor(state);
  assert.deepEqual(
    { total: before.sku.total, reserved: before.sku.reserved, sold: before.sku.sold },
    { total: initialStock, ...held },
  );
  assert.equal(before.sku.available, initialStock - held.reserved - held.sold);

  const response = await transition(base, orderId, action);
  const expected = legal[state]?.[action];

  if (expected === undefined) {
    const problem = assertProblem(response, 409, 'illegal_transition');
    assert.equal(problem.state, state, 'the problem names the current state');
    const afterwards = await snapshot(base, orderId, sku);
    assert.deepEqual(afterwards.order, before.order, 'order unchanged');
    assert.equal(afterwards.etag, before.etag, 'order ETag unchanged');
    assert.deepEqual(afterwards.sku, before.sku, 'SKU unchanged, version included');
    return;
  }

  assert.equal(response.status, 200, JSON.stringify(response.body));
  const order = response.body;
  assert.equal(order.id, orderId);
  assert.equal(order.state, expected.to);
  assert.equal(order.qty, qty);
  assert.ok(order.version > before.order.version, `version ${order.version} > ${before.order.version}`);
  assert.equal(response.headers.get('etag'), `"${order.version}"`);
  assert.notEqual(response.headers.get('etag'), before.etag);
  assert.equal(order.history.length, before.order.history.length + 1, 'history grows by one entry');
  assert.deepEqual(order.history.slice(0, -1), before.order.history, 'earlier history is kept');
  const last = order.history.at(-1)!;
  assert.equal(last.state, expected.to);
  assert.ok(Date.parse(last.at) >= Date.parse(before.order.history.at(-1)!.at), 'history is in time order');

  // A read after the transition sees exactly what the transition answered.
  const reread = await getOrder(base, orderId);
  assert.equal(reread.status, 200);
  assert.deepEqual(reread.body, order);
  assert.equal(reread.headers.get('etag'), response.headers.get('etag'));

  const skuAfter = await getSku(base, sku);
  assert.equal(skuAfter.total, before.sku.total, 'total never moves on a transition');
  assert.equal(skuAfter.reserved, before.sku.reserved + expected.reserved, 'reserved');
  assert.equal(skuAfter.sold, before.sku.sold + expected.sold, 'sold');
  assert.equal(
    skuAfter.available,
    before.sku.available - expected.reserved - expected.sold,
    'available = total - reserved - sold',
  );
  assert.deepEqual({ reserved: skuAfter.reserved, sold: skuAfter.sold }, ledgerFor(expected.to));
}

let main: TestService;
/** Short TTL, no timer sweeps during the test: expiry happens when a test calls `sweep()`. */
let expiring: TestService;
/** Orders on `expiring`, one per action, that have lapsed and been swept into `expired`. */
const expiredOrders = new Map<Action, { orderId: string; sku: string }>();

before(async () => {
  [main, expiring] = await Promise.all([
    startTestService(),
    startTestService({ reservationTtlMs: shortTtlMs, sweepIntervalMs: 60_000 }),
  ]);
  for (const action of actions) {
    const sku = await freshSku(expiring.url, `tr-expired-${action}`, initialStock);
    const order = await createdOrder(expiring.url, sku);
    expiredOrders.set(action, { orderId: order.id, sku });
  }
  await sleep(shortTtlMs + 200);
  const report = await expiring.service.sweeper.sweep();
  assert.equal(report.expired, actions.length, 'the sweep expires every lapsed reservation');
});

after(async () => {
  for (const svc of [main, expiring]) {
    if (svc === undefined) continue;
    await svc.stop();
    svc.remove();
  }
});

describe('every (state × action) pair over HTTP', () => {
  for (const state of states) {
    for (const action of actions) {
      const expected = legal[state]?.[action];
      const label = `${state} + ${action} → ${expected ? `200 ${expected.to}` : '409 illegal_transition'}`;
      test(label, async () => {
        if (state === 'expired') {
          const { orderId, sku } = expiredOrders.get(action)!;
          await checkCell(expiring.url, state, action, orderId, sku);
          return;
        }
        const { orderId, sku } = await orderIn(main.url, state, `${state}-${action}`);
        await checkCell(main.url, state, action, orderId, sku);
      });
    }
  }
});

describe('transitions over HTTP', () => {
  test('a transition POST with no body at all is accepted (transitions take no body)', async () => {
    const sku = await freshSku(main.url, 'tr-nobody', initialStock);
    const first = await createdOrder(main.url, sku);
    for (const action of ['pay', 'ship', 'complete'] as const) {
      const response = await api<OrderView>(main.url, 'POST', `/v1/orders/${first.id}/${action}`);
      assert.equal(response.status, 200, `${action} without a body: ${JSON.stringify(response.body)}`);
    }
    const second = await createdOrder(main.url, sku);
    const cancel = await api<OrderView>(main.url, 'POST', `/v1/orders/${second.id}/cancel`);
    assert.equal(cancel.status, 200, `cancel without a body: ${JSON.stringify(cancel.body)}`);
    assert.equal(cancel.body.state, 'cancelled');
  });

  test('a transition on an unknown order is 404 order_not_found', async () => {
    for (const action of actions) {
      assertProblem(await transition(main.url, 'no-such-order', action), 404, 'order_not_found');
    }
  });

  test('cancelling a paid order returns its units to available', async () => {
    const sku = await freshSku(main.url, 'tr-refund', initialStock);
    const order = await createdOrder(main.url, sku);
    assert.deepEqual(await getSku(main.url, sku).then(ledger), {
      total: initialStock,
      reserved: qty,
      sold: 0,
      available: initialStock - qty,
    });
    assert.equal((await transition(main.url, order.id, 'pay')).status, 200);
    assert.deepEqual(await getSku(main.url, sku).then(ledger), {
      total: initialStock,
      reserved: 0,
      sold: qty,
      available: initialStock - qty,
    });
    const cancel = await transition(main.url, order.id, 'cancel');
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.deepEqual(
      cancel.body.history.map((change) => change.state),
      ['created', 'paid', 'cancelled'],
    );
    assert.deepEqual(await getSku(main.url, sku).then(ledger), {
      total: initialStock,
      reserved: 0,
      sold: 0,
      available: initialStock,
    });
    // The returned units can be reserved again, all of them.
    const again = await reserve(main.url, { sku, qty: initialStock, userId: 'u-after-refund' });
    assert.equal(again.status, 201, JSON.stringify(again.body));
  });
});

describe('reservation expiry', () => {
  test('paying after expiresAt but before the sweep is 409 reservation_expired; the sweep then expires it', async () => {
    const base = expiring.url;
    const sku = await freshSku(base, 'tr-lapsed', initialStock);
    const order = await createdOrder(base, sku);
    assert.ok(Date.parse(order.expiresAt) - Date.parse(order.createdAt) === shortTtlMs, 'expiresAt = createdAt + TTL');
    await sleep(shortTtlMs + 200);

    const before = await snapshot(base, order.id, sku);
    assert.equal(before.order.state, 'created', 'not swept yet');
    const pay = await transition(base, order.id, 'pay');
    const problem = assertProblem(pay, 409, 'reservation_expired');
    assert.equal(problem.state, 'created');
    const unchanged = await snapshot(base, order.id, sku);
    assert.deepEqual(unchanged, before, 'a refused payment changes neither the order nor the SKU');

    const report = await expiring.service.sweeper.sweep();
    assert.ok(report.expired >= 1, `sweep expired ${report.expired}`);
    const swept = await snapshot(base, order.id, sku);
    assert.equal(swept.order.state, 'expired');
    assert.deepEqual(
      swept.order.history.map((change) => change.state),
      ['created', 'expired'],
    );
    assert.ok(swept.order.version > before.order.version, 'expiry bumps the order version');
    assert.equal(swept.etag, `"${swept.order.version}"`);
    assert.deepEqual(
      ledger(swept.sku),
      { total: initialStock, reserved: 0, sold: 0, available: initialStock },
      'expiry releases the reservation',
    );

    // Once expired, paying is an illegal transition, not a lapsed reservation.
    const payExpired = assertProblem(await transition(base, order.id, 'pay'), 409, 'illegal_transition');
    assert.equal(payExpired.state, 'expired');
    // A second sweep has nothing left to do for this order.
    await expiring.service.sweeper.sweep();
    assert.deepEqual(await snapshot(base, order.id, sku), swept);
  });

  test('the periodic sweeper expires lapsed reservations on its own and releases the stock', async () => {
    const svc = await startTestService({ reservationTtlMs: shortTtlMs, sweepIntervalMs: 50 });
    try {
      const sku = nextSkuId('tr-timer');
      await createSku(svc.url, sku, { initialStock, maxPerUser: qty });
      const order = await createdOrder(svc.url, sku);
      const overLimit = await reserve(svc.url, { sku, qty: 1, userId: 'u-transitions' });
      assertProblem(overLimit, 422, 'per_user_limit_exceeded');
      const other = await createdOrder(svc.url, sku, 'u-other');
      const paid = await createdOrder(svc.url, sku, 'u-payer');
      assert.equal((await transition(svc.url, paid.id, 'pay')).status, 200);
      assert.deepEqual(
        await getSku(svc.url, sku).then(({ reserved, sold, available }) => ({ reserved, sold, available })),
        { reserved: 2 * qty, sold: qty, available: initialStock - 3 * qty },
      );

      const deadlineMs = Date.now() + shortTtlMs + 5_000;
      let state = 'created';
      while (Date.now() < deadlineMs) {
        state = (await getOrder(svc.url, order.id)).body.state;
        if (state === 'expired' && (await getOrder(svc.url, other.id)).body.state === 'expired') break;
        await sleep(50);
      }
      assert.equal(state, 'expired', 'the timer-driven sweep expired the order');
      for (const id of [order.id, other.id]) {
        const expired = await getOrder(svc.url, id);
        assert.equal(expired.body.state, 'expired');
        assert.deepEqual(
          expired.body.history.map((change) => change.state),
          ['created', 'expired'],
        );
      }
      // The paid order is untouched by expiry: its units stay sold.
      const stillPaid = await getOrder(svc.url, paid.id);
      assert.equal(stillPaid.body.state, 'paid');
      assert.deepEqual(await getSku(svc.url, sku).then(ledger), {
        total: initialStock,
        reserved: 0,
        sold: qty,
        available: initialStock - qty,
      });
      const listed = await api<{ items: OrderView[] }>(svc.url, 'GET', `/v1/orders?sku=${sku}&state=expired`);
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body.items.map((item) => item.id).sort(), [order.id, other.id].sort());
      // Expiry also gives the user back their per-user allowance.
      const again = await reserve(svc.url, { sku, qty, userId: 'u-transitions' });
      assert.equal(again.status, 201, JSON.stringify(again.body));
    } finally {
      await svc.stop();
      svc.remove();
    }
  });
});
