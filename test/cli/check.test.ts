// `hotstock check`: exit 0 and "ledger exact" on a healthy store holding
// orders in every state; exit 1 naming the violation when the ledger has been
// tampered with behind the service's back (one tampering per data dir).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OrderRecord, SkuRecord } from '../../src/domain/types.ts';
import { keys, orderIndexEntries } from '../../src/layout.ts';
import type { Write } from '../../src/store/contract.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { getOrder, getSku, reserveOk, transition } from '../support/api-helpers.ts';
import { sleep } from '../support/load.ts';
import { createSku, runCheck, startTestService, tempDataDir } from '../support/service.ts';

/** How long the expiry test waits for the sweeper before giving up. */
const expiryWaitMsMax = 10_000;

/** Applies `action` to an order, which must then be in `expected`. */
async function transitionTo(base: string, id: string, action: string, expected: string): Promise<void> {
  const response = await transition(base, id, action);
  assert.equal(response.status, 200, `${action} ${id}: ${JSON.stringify(response.body)}`);
  assert.equal(response.body.state, expected);
}

interface Fixture {
  dataDir: string;
  remove: () => void;
  /** Order ids by the state they were left in. */
  orders: Record<string, string>;
}

/** A stopped store with a SKU that has spare stock and orders in created, paid and cancelled. */
async function smallStore(): Promise<Fixture> {
  const data = tempDataDir('hotstock-check');
  const running = await startTestService({ dataDir: data.dir });
  try {
    await createSku(running.url, 'tee-m', { initialStock: 20 });
    const created = await reserveOk(running.url, 'tee-m', 2, 'alice');
    const paid = await reserveOk(running.url, 'tee-m', 1, 'bob');
    await transitionTo(running.url, paid.id, 'pay', 'paid');
    const cancelled = await reserveOk(running.url, 'tee-m', 1, 'carol');
    await transitionTo(running.url, cancelled.id, 'cancel', 'cancelled');
    return {
      dataDir: data.dir,
      remove: data.remove,
      orders: { created: created.id, paid: paid.id, cancelled: cancelled.id },
    };
  } finally {
    await running.stop();
    running.remove();
  }
}

/** Opens the stopped store directly and commits `change` to what it finds, guarded by version checks. */
async function tamper(dataDir: string, change: (store: LmdbStore) => Promise<{ key: string; write: Write }[]>) {
  const store = new LmdbStore({ dataDir });
  try {
    const edits = await change(store);
    const current = await store.getMany(edits.map((edit) => edit.key));
    const result = await store.commit(
      edits.map((edit, i) => ({ key: edit.key, version: current[i]?.version ?? 0 })),
      edits.map((edit) => edit.write),
    );
    assert.equal(result.ok, true, 'the tampering commit applies');
  } finally {
    await store.close();
  }
}

async function skuRecord(store: LmdbStore, sku: string): Promise<SkuRecord> {
  const entry = await store.get<SkuRecord>(keys.sku(sku));
  assert.ok(entry, `SKU ${sku} is in the store`);
  return entry.value;
}

async function orderRecord(store: LmdbStore, id: string): Promise<OrderRecord> {
  const entry = await store.get<OrderRecord>(keys.order(id));
  assert.ok(entry, `order ${id} is in the store`);
  return entry.value;
}

/** Runs the checker and expects exactly one violation, matching `violation`. */
async function expectOneViolation(dataDir: string, violation: RegExp): Promise<void> {
  const result = await runCheck(dataDir);
  assert.equal(result.code, 1, `exit code; output:\n${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /: 1 violation\(s\)/, result.stdout);
  assert.doesNotMatch(result.stdout, /ledger exact/);
  assert.match(result.stdout, violation, result.stdout);
}

describe('hotstock check', () => {
  it('exits 0 with "ledger exact" on a healthy store with orders in every state', async () => {
    const data = tempDataDir('hotstock-check');
    const ids: Record<string, string> = {};
    try {
      // A short reservation TTL and a fast sweeper produce one expired order ...
      const shortTtl = await startTestService({ dataDir: data.dir, reservationTtlMs: 300, sweepIntervalMs: 20 });
      try {
        await createSku(shortTtl.url, 'tee-s', { initialStock: 50, maxPerUser: 5 });
        await createSku(shortTtl.url, 'tee-l', { initialStock: 3, size: 'L' });
        ids.expired = (await reserveOk(shortTtl.url, 'tee-s', 2, 'erin')).id;
        const deadline = Date.now() + expiryWaitMsMax;
        for (;;) {
          const order = await getOrder(shortTtl.url, ids.expired);
          if (order.body.state === 'expired') break;
          assert.ok(Date.now() < deadline, `order not expired after ${expiryWaitMsMax} ms: ${order.body.state}`);
          await sleep(50);
        }
      } finally {
        await shortTtl.stop();
        shortTtl.remove();
      }
      // ... and a restart with the default TTL keeps the others where the test puts them.
      const running = await startTestService({ dataDir: data.dir });
      try {
        const base = running.url;
        ids.created = (await reserveOk(base, 'tee-s', 3, 'alice')).id;
        ids.paid = (await reserveOk(base, 'tee-s', 1, 'bob')).id;
        await transitionTo(base, ids.paid, 'pay', 'paid');
        ids.shipped = (await reserveOk(base, 'tee-s', 2, 'carol')).id;
        await transitionTo(base, ids.shipped, 'pay', 'paid');
        await transitionTo(base, ids.shipped, 'ship', 'shipped');
        ids.completed = (await reserveOk(base, 'tee-l', 3, 'dave')).id;
        await transitionTo(base, ids.completed, 'pay', 'paid');
        await transitionTo(base, ids.completed, 'ship', 'shipped');
        await transitionTo(base, ids.completed, 'complete', 'completed');
        ids.cancelled = (await reserveOk(base, 'tee-s', 1, 'frank')).id;
        await transitionTo(base, ids.cancelled, 'cancel', 'cancelled');
        ids.refunded = (await reserveOk(base, 'tee-s', 1, 'grace')).id;
        await transitionTo(base, ids.refunded, 'pay', 'paid');
        await transitionTo(base, ids.refunded, 'cancel', 'cancelled');
        for (const [state, id] of Object.entries(ids)) {
          const order = await getOrder(base, id);
          assert.equal(order.body.state, state === 'refunded' ? 'cancelled' : state, `order ${id}`);
        }
        assert.equal((await getSku(base, 'tee-l')).available, 0, 'tee-l is sold out');
      } finally {
        await running.stop();
        running.remove();
      }

      const result = await runCheck(data.dir);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /checked 2 SKUs and 7 orders at revision \d+: ledger exact/);
    } finally {
      data.remove();
    }
  });

  it('exits 1 when a SKU record says reserved is off by one', async () => {
    const fixture = await smallStore();
    try {
      await tamper(fixture.dataDir, async (store) => {
        const sku = await skuRecord(store, 'tee-m');
        return [
          {
            key: keys.sku('tee-m'),
            write: { type: 'put', key: keys.sku('tee-m'), value: { ...sku, reserved: sku.reserved + 1 } },
          },
        ];
      });
      await expectOneViolation(fixture.dataDir, /SKU tee-m: reserved is 3, created orders hold 2/);
    } finally {
      fixture.remove();
    }
  });

  it('exits 1 when a SKU is oversold (available negative)', async () => {
    const fixture = await smallStore();
    try {
      await tamper(fixture.dataDir, async (store) => {
        const sku = await skuRecord(store, 'tee-m');
        // reserved 2 + sold 1 against a total of 2: one unit more promised than exists.
        const value = { ...sku, total: sku.reserved + sku.sold - 1 };
        return [{ key: keys.sku('tee-m'), write: { type: 'put', key: keys.sku('tee-m'), value } }];
      });
      await expectOneViolation(fixture.dataDir, /SKU tee-m: available is -1 \(oversold\)/);
    } finally {
      fixture.remove();
    }
  });

  it('exits 1 when an order is missing from the per-user index', async () => {
    const fixture = await smallStore();
    try {
      const id = fixture.orders.paid!;
      await tamper(fixture.dataDir, async (store) => {
        const order = await orderRecord(store, id);
        const key = keys.userOrder(order.userId, order.sku, order.seq);
        return [{ key, write: { type: 'delete', key } }];
      });
      await expectOneViolation(
        fixture.dataDir,
        new RegExp(`order ${id}: index entry ".*user-orders/bob.*" is missing`),
      );
    } finally {
      fixture.remove();
    }
  });

  it('exits 1 when a cancelled order still counts units against its user', async () => {
    const fixture = await smallStore();
    try {
      const id = fixture.orders.cancelled!;
      await tamper(fixture.dataDir, async (store) => {
        const order = await orderRecord(store, id);
        const [, byUser] = orderIndexEntries(order);
        return [{ key: byUser.key, write: { type: 'put', key: byUser.key, value: { id, units: order.qty } } }];
      });
      await expectOneViolation(
        fixture.dataDir,
        new RegExp(`order ${id}: index entry ".*" holds \\{"id":"${id}","units":1\\}`),
      );
    } finally {
      fixture.remove();
    }
  });

  it('exits 1 on a dangling SKU entry that points at no order', async () => {
    const fixture = await smallStore();
    try {
      const key = keys.skuOrder('tee-m', 999);
      const value = { id: 'no-such-order', createdAtMs: Date.now(), expiresAtMs: Date.now() + 60_000 };
      await tamper(fixture.dataDir, async () => [{ key, write: { type: 'put', key, value } }]);
      await expectOneViolation(fixture.dataDir, /index entry ".*" points at a missing order/);
    } finally {
      fixture.remove();
    }
  });

  it('exits non-zero naming --data-dir when the data dir does not exist', async () => {
    const data = tempDataDir('hotstock-check');
    data.remove();
    const result = await runCheck(data.dir);
    assert.ok(result.code !== 0 && result.code !== null, `exit ${result.code}`);
    assert.match(result.stderr, /--data-dir/);
    assert.doesNotMatch(result.stdout, /ledger exact/);
  });
});
