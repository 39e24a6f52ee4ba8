// Table-driven test of the order state machine over every (state × action)
// pair, at times before, exactly at, and after the reservation's expiry.
// The expected table is written out from docs/api.md ("Orders: read, list,
// transition"), not derived from src/domain/order-state.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { transition } from '../../src/domain/ledger.ts';
import {
  holdsReservation,
  holdsSale,
  holdsUnits,
  nextState,
  type OrderAction,
  orderActions,
} from '../../src/domain/order-state.ts';
import { type OrderRecord, type OrderState, orderStates, type SkuRecord } from '../../src/domain/types.ts';
import { orderIndexEntries, type UserOrderEntry } from '../../src/layout.ts';

const qty = 3;
const createdAtMs = Date.UTC(2025, 0, 1, 12);
const ttlMs = 15 * 60 * 1000;
const expiresAtMs = createdAtMs + ttlMs;

/** Legal (state, action) pairs: next state and ledger change for an order of `qty` units. */
interface Legal {
  to: OrderState;
  reserved: number;
  sold: number;
  userUnitsDelta: number;
}
const legal: Partial<Record<OrderState, Partial<Record<OrderAction, Legal>>>> = {
  created: {
    pay: { to: 'paid', reserved: -qty, sold: +qty, userUnitsDelta: 0 },
    cancel: { to: 'cancelled', reserved: -qty, sold: 0, userUnitsDelta: -qty },
    expire: { to: 'expired', reserved: -qty, sold: 0, userUnitsDelta: -qty },
  },
  paid: {
    ship: { to: 'shipped', reserved: 0, sold: 0, userUnitsDelta: 0 },
    cancel: { to: 'cancelled', reserved: 0, sold: -qty, userUnitsDelta: -qty },
  },
  shipped: {
    complete: { to: 'completed', reserved: 0, sold: 0, userUnitsDelta: 0 },
  },
};

const times = {
  'long before expiry': createdAtMs + 1,
  'just before expiry': expiresAtMs - 1,
  'exactly at expiry': expiresAtMs,
  'after expiry': expiresAtMs + 60_000,
} as const;

/** What the contract says should happen for this pair at this time. */
function expectedOutcome(
  state: OrderState,
  action: OrderAction,
  nowMs: number,
): { ok: true; legal: Legal } | { ok: false; code: 'illegal_transition' | 'reservation_expired' } {
  const l = legal[state]?.[action];
  const due = state === 'created' && nowMs >= expiresAtMs;
  if (l === undefined) return { ok: false, code: 'illegal_transition' };
  if (action === 'expire' && !due) return { ok: false, code: 'illegal_transition' };
  if (action === 'pay' && due) return { ok: false, code: 'reservation_expired' };
  return { ok: true, legal: l };
}

/** A path through the machine that ends in `state`, for a realistic history. */
const pathTo: Record<OrderState, OrderState[]> = {
  created: ['created'],
  paid: ['created', 'paid'],
  shipped: ['created', 'paid', 'shipped'],
  completed: ['created', 'paid', 'shipped', 'completed'],
  cancelled: ['created', 'cancelled'],
  expired: ['created', 'expired'],
};

function orderIn(state: OrderState): OrderRecord {
  return {
    id: 'o-1',
    sku: 'tee-m-black',
    qty,
    userId: 'u-1',
    state,
    priceCents: 2_500,
    createdAtMs,
    expiresAtMs,
    history: pathTo[state].map((s, i) => ({ state: s, atMs: createdAtMs + i })),
    seq: 0,
  };
}

/** A SKU whose ledger is consistent with `order` plus some other orders' units. */
function skuFor(order: OrderRecord): SkuRecord {
  const otherReserved = 2;
  const otherSold = 5;
  return {
    sku: order.sku,
    product: 'tee',
    size: 'M',
    color: 'black',
    priceCents: 2_500,
    maxPerUser: 4,
    total: 20,
    reserved: otherReserved + (order.state === 'created' ? order.qty : 0),
    sold: otherSold + (['paid', 'shipped', 'completed'].includes(order.state) ? order.qty : 0),
    orderSeq: 8,
    initialStock: 20,
  };
}

describe('every (state × action) pair', () => {
  for (const state of orderStates) {
    for (const action of orderActions) {
      for (const [when, nowMs] of Object.entries(times)) {
        const expected = expectedOutcome(state, action, nowMs);
        const label = `${state} + ${action}, ${when} → ${expected.ok ? expected.legal.to : expected.code}`;
        test(label, () => {
          const order = orderIn(state);
          const sku = skuFor(order);
          const orderBefore = structuredClone(order);
          const skuBefore = structuredClone(sku);

          const out = transition(sku, order, action, nowMs);

          // Inputs are never modified, whatever the outcome.
          assert.deepEqual(order, orderBefore);
          assert.deepEqual(sku, skuBefore);

          if (!expected.ok) {
            assert.equal(out.ok, false);
            assert.ok(!out.ok);
            assert.equal(out.code, expected.code);
            assert.deepEqual(out.extra, { state });
            assert.equal(typeof out.detail, 'string');
            assert.ok(!('sku' in out) && !('order' in out), 'a rejection carries no new records');
            return;
          }
          assert.ok(out.ok, `expected success, got ${out.ok ? '' : out.code}`);
          const l = expected.legal;
          assert.deepEqual(out.sku, { ...sku, reserved: sku.reserved + l.reserved, sold: sku.sold + l.sold });
          // The units an order counts against its user's limit are its user entry's (see layout.ts).
          const unitsOf = (o: OrderRecord) => (orderIndexEntries(o)[1].value as UserOrderEntry).units;
          assert.equal(unitsOf(out.order) - unitsOf(order), l.userUnitsDelta, 'user entry units');
          assert.equal(out.order.state, l.to);
          assert.equal(out.order.history.length, order.history.length + 1, 'history grows by one entry');
          assert.deepEqual(out.order.history.slice(0, -1), order.history, 'earlier history is kept');
          assert.deepEqual(out.order.history.at(-1), { state: l.to, atMs: nowMs });
          assert.deepEqual(out.order, { ...order, state: l.to, history: out.order.history }, 'nothing else changes');
          assert.notEqual(out.order.history, order.history, 'history is a new array');
        });
      }
    }
  }
});

describe('the transition table', () => {
  test('nextState matches the contract for every pair', () => {
    for (const state of orderStates) {
      for (const action of orderActions) {
        assert.equal(nextState(state, action), legal[state]?.[action]?.to, `${state} + ${action}`);
      }
    }
  });

  test('exactly six legal transitions; completed, cancelled and expired are terminal', () => {
    const pairs = orderStates.flatMap((s) => orderActions.filter((a) => nextState(s, a) !== undefined));
    assert.equal(pairs.length, 6);
    for (const s of ['completed', 'cancelled', 'expired'] as const) {
      for (const a of orderActions) assert.equal(nextState(s, a), undefined, `${s} + ${a}`);
    }
  });

  test('which states count as reserved, sold and held', () => {
    const expected: Record<OrderState, [boolean, boolean, boolean]> = {
      created: [true, false, true],
      paid: [false, true, true],
      shipped: [false, true, true],
      completed: [false, true, true],
      cancelled: [false, false, false],
      expired: [false, false, false],
    };
    for (const s of orderStates) {
      assert.deepEqual([holdsReservation(s), holdsSale(s), holdsUnits(s)], expected[s], s);
    }
  });
});

describe('expiry', () => {
  test('expire succeeds only once the reservation is due', () => {
    const order = orderIn('created');
    const sku = skuFor(order);
    assert.equal(transition(sku, order, 'expire', expiresAtMs - 1).ok, false);
    const at = transition(sku, order, 'expire', expiresAtMs);
    assert.ok(at.ok);
    assert.equal(at.order.state, 'expired');
    assert.deepEqual(at.order.history.at(-1), { state: 'expired', atMs: expiresAtMs });
  });

  test('pay just before expiry succeeds; at and after expiry it is reservation_expired', () => {
    const order = orderIn('created');
    const sku = skuFor(order);
    assert.ok(transition(sku, order, 'pay', expiresAtMs - 1).ok);
    for (const now of [expiresAtMs, expiresAtMs + 1, expiresAtMs + ttlMs]) {
      const out = transition(sku, order, 'pay', now);
      assert.ok(!out.ok);
      assert.equal(out.code, 'reservation_expired');
    }
  });

  test('expiresAtMs means nothing once the order has left created', () => {
    for (const state of ['paid', 'shipped', 'completed', 'cancelled', 'expired'] as const) {
      const order = orderIn(state);
      const sku = skuFor(order);
      const out = transition(sku, order, 'expire', expiresAtMs + ttlMs);
      assert.ok(!out.ok);
      assert.equal(out.code, 'illegal_transition', state);
    }
    const paid = orderIn('paid');
    const ship = transition(skuFor(paid), paid, 'ship', expiresAtMs + ttlMs);
    assert.ok(ship.ok, 'a paid order ships after its old reservation deadline');
  });
});

describe('programmer errors throw', () => {
  test('an order applied to another SKU', () => {
    const order = orderIn('created');
    const sku = { ...skuFor(order), sku: 'other' };
    assert.throws(() => transition(sku, order, 'cancel', createdAtMs + 1));
  });

  test('a ledger that does not hold the order’s units', () => {
    const order = orderIn('paid');
    const sku = { ...skuFor(order), sold: 0 };
    assert.throws(() => transition(sku, order, 'cancel', createdAtMs + 1), /sold/);
  });
});
