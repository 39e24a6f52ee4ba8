// Model-based property test of the stock ledger: random command sequences are
// applied through the pure domain functions exactly as the engine would apply
// them, and after every step the ledger is checked against a model recomputed
// from the orders themselves (never from the SKU record).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { adjust, assertSkuInvariants, available, newOrder, reserve, transition } from '../../src/domain/ledger.ts';
import type { OrderAction } from '../../src/domain/order-state.ts';
import type { OrderRecord, OrderState, SkuRecord } from '../../src/domain/types.ts';

const ttlMs = 1_000;
const startMs = Date.UTC(2025, 0, 1);
const userIds = ['u0', 'u1', 'u2'] as const;

// ---- the model: written from the contract (docs/api.md), independent of src/domain/order-state.ts

/** Legal transitions and how each moves the ledger, per unit of the order's qty. */
const modelTransitions: Record<string, { to: OrderState; reserved: number; sold: number; user: number }> = {
  'created/pay': { to: 'paid', reserved: -1, sold: 1, user: 0 },
  'created/cancel': { to: 'cancelled', reserved: -1, sold: 0, user: -1 },
  'created/expire': { to: 'expired', reserved: -1, sold: 0, user: -1 },
  'paid/ship': { to: 'shipped', reserved: 0, sold: 0, user: 0 },
  'paid/cancel': { to: 'cancelled', reserved: 0, sold: -1, user: -1 },
  'shipped/complete': { to: 'completed', reserved: 0, sold: 0, user: 0 },
};
const reservedStates: ReadonlySet<OrderState> = new Set(['created']);
const soldStates: ReadonlySet<OrderState> = new Set(['paid', 'shipped', 'completed']);
const heldStates: ReadonlySet<OrderState> = new Set(['created', 'paid', 'shipped', 'completed']);

// ---- the world an engine keeps

interface World {
  nowMs: number;
  skus: Map<string, SkuRecord>;
  orders: Map<string, OrderRecord>;
  /** Per `${sku}/${user}` held units, maintained by the model from reserve qty and each transition's states. */
  userUnits: Map<string, number>;
  /** Model of each SKU's total: initial stock plus accepted adjustments. */
  modelTotal: Map<string, number>;
  nextOrderSeq: number;
}

interface SkuSpec {
  total: number;
  maxPerUser: number | null;
}

type Cmd =
  | { kind: 'reserve'; sku: number; user: number; qty: number }
  | { kind: 'pay' | 'ship' | 'complete' | 'cancel' | 'expireOne'; order: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'expire'; ms: number }
  | { kind: 'adjust'; sku: number; delta: number };

const userKey = (sku: string, user: string): string => `${sku}/${user}`;

function snapshot(w: World): World {
  return structuredClone(w);
}

function ordersOf(w: World, sku: string): OrderRecord[] {
  return [...w.orders.values()].filter((o) => o.sku === sku);
}

function sumQty(orders: OrderRecord[], states: ReadonlySet<OrderState>): number {
  return orders.filter((o) => states.has(o.state)).reduce((n, o) => n + o.qty, 0);
}

/** Units a user holds of a SKU, recomputed from the orders. */
function heldFromOrders(w: World, sku: string, user: string): number {
  return sumQty(
    ordersOf(w, sku).filter((o) => o.userId === user),
    heldStates,
  );
}

/** available, recomputed from the model total and the orders. */
function modelAvailable(w: World, sku: string): number {
  const orders = ordersOf(w, sku);
  return w.modelTotal.get(sku)! - sumQty(orders, reservedStates) - sumQty(orders, soldStates);
}

function checkInvariants(w: World): void {
  for (const [id, sku] of w.skus) {
    const orders = ordersOf(w, id);
    const reserved = sumQty(orders, reservedStates);
    const sold = sumQty(orders, soldStates);
    assert.doesNotThrow(() => assertSkuInvariants(sku));
    assert.equal(sku.total, w.modelTotal.get(id), `${id}: total`);
    assert.equal(sku.reserved, reserved, `${id}: reserved != sum of created orders`);
    assert.equal(sku.sold, sold, `${id}: sold != sum of paid/shipped/completed orders`);
    assert.ok(available(sku) >= 0, `${id}: available ${available(sku)}`);
    assert.equal(available(sku), sku.total - reserved - sold, `${id}: available`);
    assert.ok(sku.total >= reserved + sold, `${id}: total ${sku.total} below reserved+sold ${reserved + sold}`);
    for (const user of userIds) {
      const held = heldFromOrders(w, id, user);
      assert.equal(w.userUnits.get(userKey(id, user)) ?? 0, held, `${id}/${user}: userUnits counter drifted`);
      if (sku.maxPerUser !== null) {
        assert.ok(held <= sku.maxPerUser, `${id}/${user}: holds ${held} > maxPerUser ${sku.maxPerUser}`);
      }
    }
  }
  for (const o of w.orders.values()) {
    assert.equal(o.history.at(-1)?.state, o.state, `${o.id}: last history entry is not the state`);
    assert.equal(o.history[0]?.state, 'created', `${o.id}: history starts elsewhere`);
  }
}

// Outcome counters across all runs, to show the generator reaches every branch.
const seen = new Map<string, number>();
const count = (what: string): void => {
  seen.set(what, (seen.get(what) ?? 0) + 1);
};

function doReserve(w: World, skuIdx: number, userIdx: number, qty: number): void {
  const skuIds = [...w.skus.keys()];
  const skuId = skuIds[skuIdx % skuIds.length]!;
  const userId = userIds[userIdx % userIds.length]!;
  const sku = w.skus.get(skuId)!;
  const key = userKey(skuId, userId);
  const heldCounter = w.userUnits.get(key) ?? 0;

  const free = modelAvailable(w, skuId);
  const held = heldFromOrders(w, skuId, userId);
  const expected =
    free === 0
      ? 'sold_out'
      : free < qty
        ? 'insufficient_stock'
        : sku.maxPerUser !== null && held + qty > sku.maxPerUser
          ? 'per_user_limit_exceeded'
          : 'ok';

  const before = snapshot(w);
  const out = reserve(sku, qty, heldCounter);
  assert.deepEqual(w, before, 'reserve mutated its inputs');
  count(`reserve:${out.ok ? 'ok' : out.code}`);

  if (!out.ok) {
    assert.equal(out.code, expected, `reserve ${qty} of ${skuId} for ${userId} (available ${free}, held ${held})`);
    assert.equal(out.code === 'sold_out', free === 0, 'sold_out exactly when available == 0');
    if (out.code === 'insufficient_stock') {
      assert.ok(free > 0 && free < qty);
      assert.deepEqual(out.extra, { available: free });
    }
    if (out.code === 'per_user_limit_exceeded') {
      assert.deepEqual(out.extra, { maxPerUser: sku.maxPerUser, held });
    }
    return; // a rejection commits nothing
  }
  assert.equal(expected, 'ok', `reserve accepted but the model expected ${expected}`);
  assert.deepEqual(
    out.sku,
    { ...sku, reserved: sku.reserved + qty, orderSeq: sku.orderSeq + 1 },
    'reserve changes only reserved, and numbers the new order',
  );

  const id = `o${w.nextOrderSeq++}`;
  const order = newOrder({ id, sku, qty, userId }, w.nowMs, ttlMs);
  assert.deepEqual(order, {
    id,
    sku: skuId,
    qty,
    userId,
    state: 'created',
    priceCents: sku.priceCents,
    createdAtMs: w.nowMs,
    expiresAtMs: w.nowMs + ttlMs,
    history: [{ state: 'created', atMs: w.nowMs }],
    seq: sku.orderSeq,
  });
  w.skus.set(skuId, out.sku);
  w.orders.set(id, order);
  w.userUnits.set(key, heldCounter + qty);
}

function doTransition(w: World, orderId: string, action: OrderAction): void {
  const order = w.orders.get(orderId)!;
  const sku = w.skus.get(order.sku)!;
  const due = order.state === 'created' && w.nowMs >= order.expiresAtMs;
  const legal = modelTransitions[`${order.state}/${action}`];
  const expected =
    legal === undefined || (action === 'expire' && !due)
      ? 'illegal_transition'
      : action === 'pay' && due
        ? 'reservation_expired'
        : 'ok';

  const before = snapshot(w);
  const out = transition(sku, order, action, w.nowMs);
  assert.deepEqual(w, before, `${action} mutated its inputs`);
  count(`${order.state}/${action}:${out.ok ? 'ok' : out.code}`);

  if (!out.ok) {
    assert.equal(out.code, expected, `${action} on ${order.state} order (due ${due})`);
    assert.deepEqual(out.extra, { state: order.state });
    return; // a rejection commits nothing
  }
  assert.equal(expected, 'ok', `${action} on ${order.state} order accepted; model expected ${expected}`);
  assert.ok(legal);
  const q = order.qty;
  assert.deepEqual(out.order, {
    ...order,
    state: legal.to,
    history: [...order.history, { state: legal.to, atMs: w.nowMs }],
  });
  assert.deepEqual(out.sku, { ...sku, reserved: sku.reserved + q * legal.reserved, sold: sku.sold + q * legal.sold });

  const key = userKey(order.sku, order.userId);
  w.skus.set(order.sku, out.sku);
  w.orders.set(orderId, out.order);
  w.userUnits.set(key, (w.userUnits.get(key) ?? 0) + q * legal.user);
}

function doAdjust(w: World, skuIdx: number, delta: number): void {
  const skuIds = [...w.skus.keys()];
  const skuId = skuIds[skuIdx % skuIds.length]!;
  const sku = w.skus.get(skuId)!;
  const orders = ordersOf(w, skuId);
  const committed = sumQty(orders, reservedStates) + sumQty(orders, soldStates);
  const newTotal = w.modelTotal.get(skuId)! + delta;

  const before = snapshot(w);
  const out = adjust(sku, delta);
  assert.deepEqual(w, before, 'adjust mutated its inputs');
  count(`adjust:${out.ok ? 'ok' : out.code}`);

  if (!out.ok) {
    assert.equal(out.code, 'adjustment_below_committed');
    assert.ok(newTotal < committed, `adjust ${delta} rejected though ${newTotal} >= ${committed}`);
    return;
  }
  assert.ok(newTotal >= committed, `adjust ${delta} accepted though ${newTotal} < ${committed}`);
  assert.deepEqual(out.sku, { ...sku, total: sku.total + delta });
  w.skus.set(skuId, out.sku);
  w.modelTotal.set(skuId, newTotal);
}

/** Advances the clock, then expires every due reservation, as the sweeper does. */
function doExpireSweep(w: World, ms: number): void {
  w.nowMs += ms;
  for (const o of [...w.orders.values()]) {
    if (o.state === 'created' && w.nowMs >= o.expiresAtMs) doTransition(w, o.id, 'expire');
  }
  for (const o of w.orders.values()) {
    assert.ok(o.state !== 'created' || o.expiresAtMs > w.nowMs, `${o.id} still due after the sweep`);
  }
}

function run(w: World, cmd: Cmd): void {
  switch (cmd.kind) {
    case 'reserve':
      doReserve(w, cmd.sku, cmd.user, cmd.qty);
      return;
    case 'adjust':
      doAdjust(w, cmd.sku, cmd.delta);
      return;
    case 'tick':
      w.nowMs += cmd.ms;
      return;
    case 'expire':
      doExpireSweep(w, cmd.ms);
      return;
    default: {
      const ids = [...w.orders.keys()];
      if (ids.length === 0) return;
      // Prefer recent orders: they are the ones most likely still in motion.
      const id = ids[ids.length - 1 - (cmd.order % ids.length)]!;
      doTransition(w, id, cmd.kind === 'expireOne' ? 'expire' : cmd.kind);
    }
  }
}

const skuSpecArb: fc.Arbitrary<SkuSpec> = fc.record({
  total: fc.integer({ min: 0, max: 12 }),
  maxPerUser: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
});

const clockStepArb = fc.oneof(
  fc.constantFrom(0, 1, ttlMs - 1, ttlMs, ttlMs + 1),
  fc.integer({ min: 0, max: ttlMs / 4 }),
  fc.integer({ min: 0, max: 2 * ttlMs }),
);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      sku: fc.nat(2),
      user: fc.nat(2),
      qty: fc.integer({ min: 1, max: 6 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom('pay' as const, 'ship' as const, 'complete' as const, 'cancel' as const),
      order: fc.nat(3),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expireOne' as const), order: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: clockStepArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('expire' as const), ms: clockStepArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      sku: fc.nat(2),
      delta: fc.integer({ min: -10, max: 10 }),
    }),
  },
);

function initialWorld(specs: SkuSpec[]): World {
  const w: World = {
    nowMs: startMs,
    skus: new Map(),
    orders: new Map(),
    userUnits: new Map(),
    modelTotal: new Map(),
    nextOrderSeq: 0,
  };
  specs.forEach((s, i) => {
    const id = `sku-${i}`;
    w.skus.set(id, {
      sku: id,
      product: 'tee',
      size: 'M',
      color: 'black',
      priceCents: 1_000 + i,
      maxPerUser: s.maxPerUser,
      total: s.total,
      orderSeq: 0,
      initialStock: s.total,
      reserved: 0,
      sold: 0,
    });
    w.modelTotal.set(id, s.total);
  });
  return w;
}

test('ledger invariants hold across random command sequences', () => {
  fc.assert(
    fc.property(
      fc.array(skuSpecArb, { minLength: 1, maxLength: 3 }),
      fc.array(cmdArb, { maxLength: 60, size: 'max' }),
      (specs, cmds) => {
        const w = initialWorld(specs);
        checkInvariants(w);
        for (const cmd of cmds) {
          run(w, cmd);
          checkInvariants(w);
        }
      },
    ),
    { numRuns: 300 },
  );

  // The generator must actually reach every outcome, or the property proves little.
  const mustSee = [
    'reserve:ok',
    'reserve:sold_out',
    'reserve:insufficient_stock',
    'reserve:per_user_limit_exceeded',
    'created/pay:ok',
    'created/pay:reservation_expired',
    'created/cancel:ok',
    'created/expire:ok',
    'created/expire:illegal_transition',
    'paid/ship:ok',
    'paid/cancel:ok',
    'paid/pay:illegal_transition',
    'shipped/complete:ok',
    'shipped/cancel:illegal_transition',
    'cancelled/pay:illegal_transition',
    'expired/pay:illegal_transition',
    'adjust:ok',
    'adjust:adjustment_below_committed',
  ];
  // LEDGER_STATS=1 prints how often each outcome was reached.
  if (process.env.LEDGER_STATS) console.log(Object.fromEntries([...seen].sort()));
  const missing = mustSee.filter((k) => !seen.has(k));
  assert.deepEqual(missing, [], `outcomes never generated: ${missing.join(', ')}`);
});
