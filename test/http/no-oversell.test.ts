// Nothing is oversold, ever: N clients race for one SKU's S units over real
// HTTP, all requests in flight at once. Exactly min(N, S) win with qty 1; with
// mixed quantities every rejection is the right one for the stock left; the
// per-user limit holds under the same race; and the offline checker finds the
// ledger exact afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { getSku, listAllOrders } from '../support/api-helpers.ts';
import { assertLedgerExact } from '../support/assertions.ts';
import { type Answer, call, randomInt, seededRandom, testSeed } from '../support/load.ts';
import { createSku, startTestService, type TestService } from '../support/service.ts';

interface Race {
  body: { sku: string; qty: number; userId: string };
  answer: Answer;
}

/** Fires every reservation at once (Promise.all over real fetches) and pairs each with its answer. */
async function race(sku: string, requests: { qty: number; userId: string }[], label: string): Promise<Race[]> {
  const bodies = requests.map((request) => ({ sku, ...request }));
  const answers = await Promise.all(
    bodies.map((body, i) => call(service.url, 'POST', '/v1/orders', { body, idempotencyKey: `${label}-${i}` })),
  );
  return bodies.map((body, i) => ({ body, answer: answers[i]! }));
}

function codeOf(answer: Answer): string | undefined {
  return answer.body?.code as string | undefined;
}

let service: TestService;
const seed = testSeed();
const random = seededRandom(seed);

describe('no oversell under concurrent reservations', () => {
  before(async () => {
    service = await startTestService();
  });
  after(async () => {
    await service?.stop();
    service?.remove();
  });

  const pairs: [clients: number, stock: number][] = [
    [50, 10],
    [200, 37],
    [500, 1],
    [300, 300],
    [100, 250],
    [400, 0],
  ];
  for (const [clients, stock] of pairs) {
    it(`${clients} clients race for ${stock} units, qty 1: exactly ${Math.min(clients, stock)} win`, async () => {
      const sku = `race-${clients}-${stock}`;
      await createSku(service.url, sku, { initialStock: stock });
      const results = await race(
        sku,
        Array.from({ length: clients }, (_, i) => ({ qty: 1, userId: `${sku}-user-${i}` })),
        sku,
      );
      const won = results.filter((result) => result.answer.status === 201);
      const lost = results.filter((result) => result.answer.status !== 201);
      assert.equal(won.length, Math.min(clients, stock), `201s for ${clients} clients and ${stock} units`);
      for (const { answer } of lost) {
        // qty 1 can only be refused when nothing is left: 0 < available < 1 is impossible.
        assert.equal(answer.status, 409, JSON.stringify(answer.body));
        assert.equal(codeOf(answer), 'sold_out', JSON.stringify(answer.body));
      }
      for (const { body, answer } of won) {
        assert.equal(answer.body.state, 'created');
        assert.deepEqual({ sku: answer.body.sku, qty: answer.body.qty, userId: answer.body.userId }, body);
      }
      assert.equal(new Set(won.map((result) => result.answer.body.id)).size, won.length, 'order ids are unique');

      const final = await getSku(service.url, sku);
      assert.equal(final.total, stock);
      assert.equal(final.reserved, won.length);
      assert.equal(final.sold, 0);
      assert.equal(final.available, stock - won.length);
      const orders = await listAllOrders(service.url, { sku });
      assert.deepEqual(
        orders.map((order) => order.id).sort(),
        won.map((result) => result.answer.body.id as string).sort(),
        'the SKU holds exactly the orders that got 201',
      );
    });
  }

  const mixed: [clients: number, stock: number][] = [
    [100, 50],
    [40, 7],
    [250, 101],
    [60, 200],
  ];
  for (const [clients, stock] of mixed) {
    it(`${clients} clients race for ${stock} units with qty 1..3: granted <= stock, every refusal fits the stock left`, async (t) => {
      t.diagnostic(`seed ${seed} (HOTSTOCK_TEST_SEED=${seed} replays the quantities)`);
      const sku = `mixed-${clients}-${stock}`;
      await createSku(service.url, sku, { initialStock: stock });
      const requests = Array.from({ length: clients }, (_, i) => ({
        qty: randomInt(random, 1, 3),
        userId: `${sku}-user-${i}`,
      }));
      const asked = requests.reduce((sum, request) => sum + request.qty, 0);
      const results = await race(sku, requests, sku);
      const won = results.filter((result) => result.answer.status === 201);
      const lost = results.filter((result) => result.answer.status !== 201);
      const granted = won.reduce((sum, result) => sum + result.body.qty, 0);
      const left = stock - granted;
      assert.ok(granted <= stock, `granted ${granted} of ${stock}`);
      if (asked <= stock) assert.equal(lost.length, 0, 'enough stock for everyone: nobody is refused');

      // Stock only shrinks during the race, so whatever a refusal saw, the final stock is at most that.
      for (const { body, answer } of lost) {
        assert.equal(answer.status, 409, JSON.stringify(answer.body));
        const code = codeOf(answer);
        if (code === 'sold_out') {
          assert.equal(left, 0, `sold_out was answered, yet ${left} units are left`);
        } else {
          assert.equal(code, 'insufficient_stock', JSON.stringify(answer.body));
          const seen = answer.body.available as number;
          assert.ok(
            Number.isInteger(seen) && seen > 0 && seen < body.qty,
            `insufficient_stock: ${JSON.stringify(answer.body)}`,
          );
          assert.ok(left <= seen, `refused qty ${body.qty} at available ${seen}, but ${left} are left`);
        }
        assert.ok(left < body.qty, `qty ${body.qty} refused although ${left} units are left`);
      }

      const final = await getSku(service.url, sku);
      assert.deepEqual(
        { total: final.total, reserved: final.reserved, sold: final.sold, available: final.available },
        { total: stock, reserved: granted, sold: 0, available: left },
      );
      const orders = await listAllOrders(service.url, { sku });
      assert.equal(orders.length, won.length);
      assert.equal(
        orders.reduce((sum: number, order: OrderView) => sum + order.qty, 0),
        granted,
      );
    });
  }

  it('the per-user limit holds when one user races against themself', async () => {
    const sku = 'race-per-user';
    const maxPerUser = 3;
    const userCount = 10;
    await createSku(service.url, sku, { initialStock: 1_000, maxPerUser });
    const requests = Array.from({ length: 200 }, (_, i) => ({ qty: 1, userId: `${sku}-user-${i % userCount}` }));
    const results = await race(sku, requests, sku);
    const wonPerUser = new Map<string, number>();
    for (const { body, answer } of results) {
      if (answer.status === 201) wonPerUser.set(body.userId, (wonPerUser.get(body.userId) ?? 0) + 1);
      else {
        assert.equal(answer.status, 422, JSON.stringify(answer.body));
        assert.equal(codeOf(answer), 'per_user_limit_exceeded');
      }
    }
    assert.equal(wonPerUser.size, userCount);
    for (const [userId, won] of wonPerUser) assert.equal(won, maxPerUser, `${userId} won ${won}`);
    const final = await getSku(service.url, sku);
    assert.equal(final.reserved, userCount * maxPerUser);
  });

  it('hotstock check finds the ledger exact after the races', async () => {
    await service.stop();
    await assertLedgerExact(service.dataDir);
  });
});
