// Idempotency-Key over real HTTP (docs/api.md, "Idempotency"): a replay
// returns the original status and body, the same key with a different body is
// 422, only 2xx answers are recorded, keys are scoped per API key, concurrent
// retries collapse into one order, and batch items share the key space with
// single reservations. Transitions honour a key when one is sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import {
  adjust,
  type BatchItem,
  batch,
  freshSku,
  getOrder,
  getSku,
  listAllOrders,
  nextSkuId,
  putSku,
  transition,
} from '../support/api-helpers.ts';
import { assertProblem } from '../support/assertions.ts';
import {
  adminKey,
  api,
  clientKey,
  createSku,
  freshIdempotencyKey,
  otherClientKey,
  reserve,
  startTestService,
  type TestService,
} from '../support/service.ts';

let svc: TestService;
let base: string;

before(async () => {
  svc = await startTestService();
  base = svc.url;
});

after(async () => {
  await svc?.stop();
  svc?.remove();
});

/** Every order of a SKU, following nextCursor to the end. */
const ordersOf = (sku: string): Promise<OrderView[]> => listAllOrders(base, { sku }, 100);

describe('POST /v1/orders replay', () => {
  test('the same key and body replays the original 201 and body, and creates no second order', async () => {
    const sku = await freshSku(base, 'idem-replay');
    const key = freshIdempotencyKey('replay');
    const body = { sku, qty: 3, userId: 'u-replay' };
    const first = await reserve(base, body, key);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.headers.get('idempotent-replayed'), null, 'the original is not a replay');
    const skuAfterFirst = await getSku(base, sku);

    for (let i = 0; i < 3; i++) {
      const again = await reserve(base, body, key);
      assert.equal(again.status, 201);
      assert.deepEqual(again.body, first.body, 'same order id, version and everything else');
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(again.headers.get('etag'), first.headers.get('etag'));
    }

    const orders = await ordersOf(sku);
    assert.deepEqual(
      orders.map((order) => order.id),
      [first.body.id],
    );
    assert.deepEqual(await getSku(base, sku), skuAfterFirst, 'the replays moved nothing, not even the version');
    assert.equal(skuAfterFirst.reserved, 3);
  });

  test('the same body with its fields in another order is the same request', async () => {
    const sku = await freshSku(base, 'idem-canonical');
    const key = freshIdempotencyKey('canonical');
    const first = await reserve(base, { sku, qty: 1, userId: 'u-canonical' }, key);
    assert.equal(first.status, 201);
    const reordered = await api(base, 'POST', '/v1/orders', {
      rawBody: `{"userId":"u-canonical","qty":1,"sku":${JSON.stringify(sku)}}`,
      headers: { 'idempotency-key': key },
    });
    assert.equal(reordered.status, 201, JSON.stringify(reordered.body));
    assert.deepEqual(reordered.body, first.body);
    assert.equal(reordered.headers.get('idempotent-replayed'), 'true');
    assert.equal((await ordersOf(sku)).length, 1);
  });

  test('the same key with a different body is 422 idempotency_key_reused and changes nothing', async () => {
    const sku = await freshSku(base, 'idem-reused');
    const otherSku = await freshSku(base, 'idem-reused-other');
    const key = freshIdempotencyKey('reused');
    const first = await reserve(base, { sku, qty: 1, userId: 'u-reused' }, key);
    assert.equal(first.status, 201);
    const skuBefore = await getSku(base, sku);
    const otherBefore = await getSku(base, otherSku);

    for (const different of [
      { sku, qty: 2, userId: 'u-reused' },
      { sku, qty: 1, userId: 'u-someone-else' },
      { sku: otherSku, qty: 1, userId: 'u-reused' },
    ]) {
      assertProblem(await reserve(base, different, key), 422, 'idempotency_key_reused');
    }
    assert.deepEqual(await getSku(base, sku), skuBefore);
    assert.deepEqual(await getSku(base, otherSku), otherBefore);
    assert.equal((await ordersOf(sku)).length, 1);
    assert.equal((await ordersOf(otherSku)).length, 0);
    // The original request still replays.
    const replay = await reserve(base, { sku, qty: 1, userId: 'u-reused' }, key);
    assert.equal(replay.status, 201);
    assert.deepEqual(replay.body, first.body);
  });

  test('a reservation still replays after the SKU has sold out', async () => {
    const sku = await freshSku(base, 'idem-replay-sold-out', 2);
    const key = freshIdempotencyKey('replay-sold-out');
    const first = await reserve(base, { sku, qty: 2, userId: 'u-last' }, key);
    assert.equal(first.status, 201);
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-late' }), 409, 'sold_out');
    const replay = await reserve(base, { sku, qty: 2, userId: 'u-last' }, key);
    assert.equal(replay.status, 201, JSON.stringify(replay.body));
    assert.deepEqual(replay.body, first.body);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  });

  test('POST /v1/orders without an Idempotency-Key is 400 idempotency_key_required', async () => {
    const sku = await freshSku(base, 'idem-no-key');
    const response = await api(base, 'POST', '/v1/orders', { body: { sku, qty: 1, userId: 'u-no-key' } });
    assertProblem(response, 400, 'idempotency_key_required');
    assert.equal((await getSku(base, sku)).reserved, 0);
  });
});

describe('rejections are not recorded', () => {
  test('sold_out, then a restock: the same key is decided afresh and succeeds', async () => {
    const sku = await freshSku(base, 'idem-sold-out', 0);
    const key = freshIdempotencyKey('sold-out');
    const body = { sku, qty: 1, userId: 'u-sold-out' };
    assertProblem(await reserve(base, body, key), 409, 'sold_out');
    assertProblem(await reserve(base, body, key), 409, 'sold_out');
    assert.equal((await adjust(base, sku, 5)).status, 200);
    const retry = await reserve(base, body, key);
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal(retry.headers.get('idempotent-replayed'), null, 'decided afresh, not replayed');
    assert.equal((await getSku(base, sku)).reserved, 1);
    // From now on the success is what replays.
    const replay = await reserve(base, body, key);
    assert.deepEqual(replay.body, retry.body);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  });

  test('insufficient_stock, then a restock: the same key succeeds', async () => {
    const sku = await freshSku(base, 'idem-insufficient', 2);
    const key = freshIdempotencyKey('insufficient');
    const body = { sku, qty: 3, userId: 'u-insufficient' };
    assertProblem(await reserve(base, body, key), 409, 'insufficient_stock');
    assert.equal((await adjust(base, sku, 1)).status, 200);
    const retry = await reserve(base, body, key);
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal(retry.headers.get('idempotent-replayed'), null);
    assert.equal((await getSku(base, sku)).reserved, 3);
  });

  test('sku_not_found, then the SKU is created: the same key succeeds', async () => {
    const sku = nextSkuId('idem-later');
    const key = freshIdempotencyKey('not-found');
    const body = { sku, qty: 1, userId: 'u-early' };
    assertProblem(await reserve(base, body, key), 404, 'sku_not_found');
    await createSku(base, sku, { initialStock: 1 });
    const retry = await reserve(base, body, key);
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
  });

  test('a per-user limit rejection is not recorded either', async () => {
    const sku = nextSkuId('idem-limit');
    await createSku(base, sku, { initialStock: 10, maxPerUser: 1 });
    const held = await reserve(base, { sku, qty: 1, userId: 'u-limit' });
    assert.equal(held.status, 201);
    const key = freshIdempotencyKey('limit');
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-limit' }, key), 422, 'per_user_limit_exceeded');
    assert.equal((await transition(base, held.body.id as string, 'cancel')).status, 200);
    const retry = await reserve(base, { sku, qty: 1, userId: 'u-limit' }, key);
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
  });
});

describe('key scope and concurrency', () => {
  test('keys are scoped per API key: another client with the same key gets its own order', async () => {
    const sku = await freshSku(base, 'idem-scope');
    const key = freshIdempotencyKey('scope');
    const body = { sku, qty: 1, userId: 'u-scope' };
    const mine = await reserve(base, body, key, clientKey);
    const theirs = await reserve(base, body, key, otherClientKey);
    assert.equal(mine.status, 201);
    assert.equal(theirs.status, 201, JSON.stringify(theirs.body));
    assert.notEqual(theirs.body.id, mine.body.id);
    assert.equal(theirs.headers.get('idempotent-replayed'), null);
    assert.equal((await getSku(base, sku)).reserved, 2);
    // Each replays its own answer.
    assert.deepEqual((await reserve(base, body, key, clientKey)).body, mine.body);
    assert.deepEqual((await reserve(base, body, key, otherClientKey)).body, theirs.body);
    // A different body under the other client's scope is judged against that scope's record only.
    assertProblem(
      await reserve(base, { sku, qty: 2, userId: 'u-scope' }, key, otherClientKey),
      422,
      'idempotency_key_reused',
    );
    assert.equal((await ordersOf(sku)).length, 2);
  });

  test('50 concurrent requests with the same key make exactly one order, all 201 with the same id', async () => {
    const sku = await freshSku(base, 'idem-concurrent', 100);
    const key = freshIdempotencyKey('concurrent');
    const body = { sku, qty: 2, userId: 'u-concurrent' };
    const responses = await Promise.all(Array.from({ length: 50 }, () => reserve(base, body, key)));
    for (const response of responses) {
      assert.equal(response.status, 201, JSON.stringify(response.body));
      assert.deepEqual(response.body, responses[0]!.body);
    }
    const originals = responses.filter((response) => response.headers.get('idempotent-replayed') !== 'true');
    assert.equal(originals.length, 1, 'exactly one request made the order; the rest are replays');
    const orders = await ordersOf(sku);
    assert.deepEqual(
      orders.map((order) => order.id),
      [responses[0]!.body.id],
    );
    const after = await getSku(base, sku);
    assert.equal(after.reserved, 2);
    assert.equal(after.available, 98);
  });

  test('concurrent requests with the same key and different bodies: one wins, the rest are 422', async () => {
    const sku = await freshSku(base, 'idem-concurrent-mixed', 100);
    const key = freshIdempotencyKey('concurrent-mixed');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => reserve(base, { sku, qty: 1 + (i % 2), userId: 'u-mixed' }, key)),
    );
    const created = responses.filter((response) => response.status === 201);
    const refused = responses.filter((response) => response.status !== 201);
    assert.ok(created.length >= 1);
    for (const response of created) assert.deepEqual(response.body, created[0]!.body);
    for (const response of refused) assertProblem(response, 422, 'idempotency_key_reused');
    assert.equal((await ordersOf(sku)).length, 1);
    assert.equal((await getSku(base, sku)).reserved, created[0]!.body.qty);
  });
  test('concurrent requests with one key naming two different SKUs still make exactly one order', async () => {
    const skus = [await freshSku(base, 'idem-cross-a', 100), await freshSku(base, 'idem-cross-b', 100)];
    const key = freshIdempotencyKey('cross');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => reserve(base, { sku: skus[i % 2]!, qty: 1, userId: 'u-cross' }, key)),
    );
    const created = responses.filter((response) => response.status === 201);
    assert.ok(created.length >= 1, JSON.stringify(responses.map((response) => response.body)));
    for (const response of created) assert.deepEqual(response.body, created[0]!.body);
    for (const response of responses.filter((r) => r.status !== 201)) {
      assertProblem(response, 422, 'idempotency_key_reused');
    }
    const orders = [...(await ordersOf(skus[0]!)), ...(await ordersOf(skus[1]!))];
    assert.deepEqual(
      orders.map((order) => order.id),
      [created[0]!.body.id],
    );
    const reserved = (await getSku(base, skus[0]!)).reserved + (await getSku(base, skus[1]!)).reserved;
    assert.equal(reserved, 1, 'one unit held across both SKUs');
  });
});

describe('POST /v1/orders:batch', () => {
  test('each item has its own key; replaying the batch gives the same per-item results', async () => {
    const sku = await freshSku(base, 'idem-batch');
    const items: BatchItem[] = Array.from({ length: 5 }, (_, i) => ({
      sku,
      qty: 1,
      userId: `u-batch-${i}`,
      idempotencyKey: freshIdempotencyKey('batch'),
    }));
    const first = await batch(base, items);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.results.length, items.length);
    for (const [i, result] of first.body.results.entries()) {
      assert.equal(result.status, 201, JSON.stringify(result));
      assert.equal(result.body.userId, items[i]!.userId, 'results are in request order');
      assert.equal(result.body.state, 'created');
    }
    assert.equal(new Set(first.body.results.map((result) => result.body.id)).size, items.length);
    const skuAfterFirst = await getSku(base, sku);
    assert.equal(skuAfterFirst.reserved, items.length);

    const replay = await batch(base, items);
    assert.equal(replay.status, 200);
    assert.deepEqual(replay.body, first.body, 'same statuses, ids and versions');
    assert.deepEqual(await getSku(base, sku), skuAfterFirst);
    assert.equal((await ordersOf(sku)).length, items.length);
  });

  test('a batch with a rejected item: the rejection is not recorded, the successes replay', async () => {
    const sku = await freshSku(base, 'idem-batch-partial', 3);
    const items: BatchItem[] = [
      { sku, qty: 2, userId: 'u-p1', idempotencyKey: freshIdempotencyKey('partial') },
      { sku, qty: 2, userId: 'u-p2', idempotencyKey: freshIdempotencyKey('partial') },
    ];
    const first = await batch(base, items);
    assert.deepEqual(
      first.body.results.map((result) => [result.status, result.body.code ?? result.body.state]),
      [
        [201, 'created'],
        [409, 'insufficient_stock'],
      ],
    );
    assert.equal((await adjust(base, sku, 1)).status, 200);
    const second = await batch(base, items);
    assert.deepEqual(second.body.results[0], first.body.results[0], 'the success replays');
    assert.equal(second.body.results[1]!.status, 201, 'the rejected item is decided afresh');
    assert.equal((await getSku(base, sku)).reserved, 4);
  });

  test('a batch item and a single POST with the same key and body replay each other', async () => {
    const sku = await freshSku(base, 'idem-batch-single');
    const singleFirstKey = freshIdempotencyKey('single-first');
    const batchFirstKey = freshIdempotencyKey('batch-first');

    const single = await reserve(base, { sku, qty: 1, userId: 'u-single' }, singleFirstKey);
    assert.equal(single.status, 201);
    const viaBatch = await batch(base, [{ sku, qty: 1, userId: 'u-single', idempotencyKey: singleFirstKey }]);
    assert.equal(viaBatch.status, 200);
    assert.deepEqual(viaBatch.body.results[0], { status: 201, body: single.body });

    const batched = await batch(base, [{ sku, qty: 2, userId: 'u-batched', idempotencyKey: batchFirstKey }]);
    assert.equal(batched.body.results[0]!.status, 201);
    const viaSingle = await reserve(base, { sku, qty: 2, userId: 'u-batched' }, batchFirstKey);
    assert.equal(viaSingle.status, 201, JSON.stringify(viaSingle.body));
    assert.equal(viaSingle.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(viaSingle.body, batched.body.results[0]!.body);

    // A different body under a key the other path recorded is refused either way.
    assertProblem(
      await reserve(base, { sku, qty: 5, userId: 'u-batched' }, batchFirstKey),
      422,
      'idempotency_key_reused',
    );
    const misuse = await batch(base, [{ sku, qty: 5, userId: 'u-single', idempotencyKey: singleFirstKey }]);
    assert.equal(misuse.body.results[0]!.status, 422);
    assert.equal(misuse.body.results[0]!.body.code, 'idempotency_key_reused');

    assert.equal((await ordersOf(sku)).length, 2);
    assert.equal((await getSku(base, sku)).reserved, 3);
  });

  test('the same key twice in one batch: one order; a different body under it is 422', async () => {
    const sku = await freshSku(base, 'idem-batch-dup');
    const key = freshIdempotencyKey('batch-dup');
    const item = { sku, qty: 1, userId: 'u-dup', idempotencyKey: key };
    const response = await batch(base, [item, item, { ...item, qty: 2 }]);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const [a, b, c] = response.body.results;
    assert.equal(a!.status, 201);
    assert.deepEqual(b, a, 'the duplicate item gets the same answer');
    assert.equal(c!.status, 422);
    assert.equal(c!.body.code, 'idempotency_key_reused');
    assert.equal((await ordersOf(sku)).length, 1);
    assert.equal((await getSku(base, sku)).reserved, 1);
  });

  test('batch keys are scoped per API key too', async () => {
    const sku = await freshSku(base, 'idem-batch-scope');
    const item = { sku, qty: 1, userId: 'u-batch-scope', idempotencyKey: freshIdempotencyKey('batch-scope') };
    const mine = await batch(base, [item], clientKey);
    const theirs = await batch(base, [item], otherClientKey);
    assert.equal(mine.body.results[0]!.status, 201);
    assert.equal(theirs.body.results[0]!.status, 201);
    assert.notEqual(theirs.body.results[0]!.body.id, mine.body.results[0]!.body.id);
    assert.equal((await getSku(base, sku)).reserved, 2);
  });
});

describe('transitions and adjustments with an Idempotency-Key', () => {
  test('pay twice with the same key: both 200 with the same body, the second replayed', async () => {
    const sku = await freshSku(base, 'idem-pay-key');
    const order = await reserve(base, { sku, qty: 2, userId: 'u-pay-key' });
    assert.equal(order.status, 201);
    const id = order.body.id as string;
    const key = freshIdempotencyKey('pay');
    const first = await transition(base, id, 'pay', { 'idempotency-key': key });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const second = await transition(base, id, 'pay', { 'idempotency-key': key });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.deepEqual(second.body, first.body);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.equal(second.headers.get('etag'), first.headers.get('etag'));
    const stock = await getSku(base, sku);
    assert.deepEqual({ reserved: stock.reserved, sold: stock.sold }, { reserved: 0, sold: 2 }, 'paid once');
    const current = await getOrder(base, id);
    assert.deepEqual(current.body, first.body);
    // The pay key cannot be spent on another action.
    assertProblem(await transition(base, id, 'cancel', { 'idempotency-key': key }), 422, 'idempotency_key_reused');
    assert.equal((await getOrder(base, id)).body.state, 'paid');
  });

  test('a transition replay returns the recorded answer even after the order has moved on', async () => {
    const sku = await freshSku(base, 'idem-pay-later');
    const order = await reserve(base, { sku, qty: 1, userId: 'u-pay-later' });
    const id = order.body.id as string;
    const key = freshIdempotencyKey('pay-later');
    const paid = await transition(base, id, 'pay', { 'idempotency-key': key });
    assert.equal(paid.status, 200);
    assert.equal((await transition(base, id, 'ship')).status, 200);
    const replay = await transition(base, id, 'pay', { 'idempotency-key': key });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.deepEqual(replay.body, paid.body);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal((await getOrder(base, id)).body.state, 'shipped', 'no second transition');
  });

  test('PUT /v1/skus with a key: creating replays 201; without a key the same create again changes nothing and a different one is refused', async () => {
    const sku = nextSkuId('idem-put');
    const body = { product: 'piggy-shirt', size: 'L', color: 'pink', priceCents: 1999, initialStock: 4 };
    const key = freshIdempotencyKey('put');
    const first = await putSku(base, sku, body, { 'idempotency-key': key });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const replay = await putSku(base, sku, body, { 'idempotency-key': key });
    assert.equal(replay.status, 201);
    assert.deepEqual(replay.body, first.body);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    // PUT is idempotent without a key too: the identical create answers the SKU as it is, unchanged.
    const again = await api(base, 'PUT', `/v1/skus/${sku}`, { key: adminKey, body });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, await getSku(base, sku));
    const different = { ...body, initialStock: 5 };
    assertProblem(
      await api(base, 'PUT', `/v1/skus/${sku}`, { key: adminKey, body: different }),
      422,
      'initial_stock_not_allowed',
    );
    assert.equal((await getSku(base, sku)).total, 4);
  });

  test('pay twice without a key: the second is 409 illegal_transition', async () => {
    const sku = await freshSku(base, 'idem-pay-no-key');
    const order = await reserve(base, { sku, qty: 1, userId: 'u-pay-no-key' });
    const id = order.body.id as string;
    assert.equal((await transition(base, id, 'pay')).status, 200);
    const second = assertProblem(await transition(base, id, 'pay'), 409, 'illegal_transition');
    assert.equal(second.state, 'paid');
    assert.equal((await getSku(base, sku)).sold, 1);
  });

  test('a stock adjustment with the same key is applied once', async () => {
    const sku = await freshSku(base, 'idem-adjust-key', 10);
    const key = freshIdempotencyKey('adjust');
    const first = await adjust(base, sku, 5, { 'idempotency-key': key });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const second = await adjust(base, sku, 5, { 'idempotency-key': key });
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, first.body);
    assert.equal(second.headers.get('idempotent-replayed'), 'true');
    assert.equal((await getSku(base, sku)).total, 15);
    assertProblem(await adjust(base, sku, 6, { 'idempotency-key': key }), 422, 'idempotency_key_reused');
    assert.equal((await getSku(base, sku)).total, 15);
  });
});
