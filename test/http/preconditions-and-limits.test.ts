// Versioned writes (ETag / If-Match), per-user limits, sold_out versus
// insufficient_stock, stock adjustments, the catalog and order listings with
// their cursors, and a batch that oversubscribes a SKU — all over real HTTP,
// checked against docs/api.md.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ErrorCode } from '../../src/errors.ts';
import type { OrderView, SkuView } from '../../src/http/views.ts';
import {
  adjust,
  allPages,
  batch,
  freshSku,
  getOrder,
  getSku,
  ledger,
  listAllOrders,
  nextSkuId,
  type Page,
  putSku,
  readSku,
  reserveOk,
  sortedIds,
  transition,
} from '../support/api-helpers.ts';
import { assertProblem } from '../support/assertions.ts';
import {
  api,
  createSku,
  freshIdempotencyKey,
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

describe('ETag and If-Match', () => {
  test('GET /v1/skus/{sku} returns ETag "<version>"', async () => {
    const sku = await freshSku(base, 'pl-etag');
    const response = await readSku(base, sku);
    assert.equal(response.headers.get('etag'), `"${response.body.version}"`);
    // Any change to the SKU moves its version and ETag.
    await reserveOk(base, sku, 1, 'u-etag');
    const after = await readSku(base, sku);
    assert.ok(after.body.version > response.body.version);
    assert.equal(after.headers.get('etag'), `"${after.body.version}"`);
  });

  test('an adjustment with a stale If-Match is 412 and changes nothing; the current ETag succeeds', async () => {
    const sku = await freshSku(base, 'pl-adjust-if-match');
    const stale = (await readSku(base, sku)).headers.get('etag')!;
    await reserveOk(base, sku, 1, 'u-moves-it');
    const current = await readSku(base, sku);
    assert.notEqual(current.headers.get('etag'), stale);

    assertProblem(await adjust(base, sku, 5, { 'if-match': stale }), 412, 'precondition_failed');
    assert.deepEqual(await getSku(base, sku), current.body, 'nothing changed, version included');

    const ok = await adjust(base, sku, 5, { 'if-match': current.headers.get('etag')! });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.total, 15);
    assert.ok(ok.body.version > current.body.version);
    assert.equal(ok.headers.get('etag'), `"${ok.body.version}"`);
    // The old current ETag is now stale in turn.
    assertProblem(await adjust(base, sku, 1, { 'if-match': current.headers.get('etag')! }), 412, 'precondition_failed');
    assert.equal((await getSku(base, sku)).total, 15);
  });

  test('PUT with a stale If-Match is 412 and changes nothing; the current ETag and `*` succeed', async () => {
    const sku = await freshSku(base, 'pl-put-if-match');
    const first = await readSku(base, sku);
    const entry = { product: 'piggy-shirt', size: 'M', color: 'red', priceCents: 2500 };
    const updated = await putSku(base, sku, entry, { 'if-match': first.headers.get('etag')! });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.priceCents, 2500);
    assert.equal(updated.headers.get('etag'), `"${updated.body.version}"`);

    const stale = first.headers.get('etag')!;
    assertProblem(
      await putSku(base, sku, { ...entry, priceCents: 1 }, { 'if-match': stale }),
      412,
      'precondition_failed',
    );
    assert.deepEqual(await getSku(base, sku), updated.body);

    const star = await putSku(base, sku, { ...entry, priceCents: 3000 }, { 'if-match': '*' });
    assert.equal(star.status, 200, JSON.stringify(star.body));
    assert.equal(star.body.priceCents, 3000);
    const afterStar = await readSku(base, sku);
    assert.equal(afterStar.body.priceCents, 3000);
    assert.deepEqual(ledger(afterStar.body), { total: 10, reserved: 0, sold: 0, available: 10 }, 'stock untouched');
  });

  test('`*` matches on adjustments and transitions', async () => {
    const sku = await freshSku(base, 'pl-star');
    const adjusted = await adjust(base, sku, 2, { 'if-match': '*' });
    assert.equal(adjusted.status, 200, JSON.stringify(adjusted.body));
    assert.equal(adjusted.body.total, 12);
    const order = await reserveOk(base, sku, 1, 'u-star');
    const paid = await transition(base, order.id, 'pay', { 'if-match': '*' });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.state, 'paid');
  });

  test('If-Match: * on a SKU that does not exist is 412, not a create (RFC 9110 §13.1.1)', async () => {
    const sku = nextSkuId('pl-star-absent');
    const response = await putSku(
      base,
      sku,
      { product: 'piggy-shirt', size: 'M', color: 'red', priceCents: 1999, initialStock: 1 },
      { 'if-match': '*' },
    );
    assertProblem(response, 412, 'precondition_failed');
    assertProblem(await api(base, 'GET', `/v1/skus/${sku}`), 404, 'sku_not_found');
  });

  test('If-Match compares strongly: a weak tag never matches, and a list matches if any tag does', async () => {
    const sku = await freshSku(base, 'pl-if-match-forms');
    const current = await readSku(base, sku);
    const version = current.body.version;
    assertProblem(await adjust(base, sku, 1, { 'if-match': `W/"${version}"` }), 412, 'precondition_failed');
    assertProblem(await adjust(base, sku, 1, { 'if-match': 'garbage' }), 412, 'precondition_failed');
    assert.deepEqual(await getSku(base, sku), current.body, 'refused preconditions change nothing');
    const listed = await adjust(base, sku, 1, { 'if-match': `"999999", "${version}"` });
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.equal(listed.body.total, 11);
  });

  test('a transition with a stale If-Match is 412 and changes nothing; the current ETag succeeds', async () => {
    const sku = await freshSku(base, 'pl-transition-if-match');
    const created = await reserve(base, { sku, qty: 2, userId: 'u-tim' });
    assert.equal(created.status, 201);
    const createdEtag = created.headers.get('etag')!;
    const id = created.body.id as string;
    const read = await getOrder(base, id);
    assert.equal(read.headers.get('etag'), createdEtag, 'GET returns the ETag the create returned');

    assertProblem(await transition(base, id, 'pay', { 'if-match': '"1"' }), 412, 'precondition_failed');
    const unchanged = await getOrder(base, id);
    assert.deepEqual(unchanged.body, read.body);
    assert.equal(unchanged.headers.get('etag'), createdEtag);
    const skuBefore = await getSku(base, sku);
    assert.deepEqual(ledger(skuBefore), { total: 10, reserved: 2, sold: 0, available: 8 });

    const paid = await transition(base, id, 'pay', { 'if-match': createdEtag });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    const paidEtag = paid.headers.get('etag')!;
    assert.notEqual(paidEtag, createdEtag);

    // The ETag from before the payment is stale now.
    assertProblem(await transition(base, id, 'ship', { 'if-match': createdEtag }), 412, 'precondition_failed');
    assert.equal((await getOrder(base, id)).body.state, 'paid');
    const shipped = await transition(base, id, 'ship', { 'if-match': paidEtag });
    assert.equal(shipped.status, 200, JSON.stringify(shipped.body));
    assert.equal(shipped.body.state, 'shipped');
  });
});

describe('per-user limit', () => {
  test('maxPerUser 2: 1 + 1 is fine, a third unit is 422; a cancel frees room; other users are unaffected', async () => {
    const sku = await freshSku(base, 'pl-limit', 10, 2);
    assert.equal((await getSku(base, sku)).maxPerUser, 2);
    const first = await reserveOk(base, sku, 1, 'u-limited');
    await reserveOk(base, sku, 1, 'u-limited');
    const before = await getSku(base, sku);

    const third = assertProblem(
      await reserve(base, { sku, qty: 1, userId: 'u-limited' }),
      422,
      'per_user_limit_exceeded',
    );
    assert.equal(typeof third.detail, 'string');
    assert.deepEqual(await getSku(base, sku), before, 'a refused reservation changes nothing');

    // Another user has their own allowance.
    await reserveOk(base, sku, 2, 'u-other');
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-other' }), 422, 'per_user_limit_exceeded');

    // Cancelling one of the user's orders gives back one unit of allowance.
    assert.equal((await transition(base, first.id, 'cancel')).status, 200);
    await reserveOk(base, sku, 1, 'u-limited');
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-limited' }), 422, 'per_user_limit_exceeded');
  });

  test('a single request above maxPerUser is refused; paid units still count against the limit', async () => {
    const sku = await freshSku(base, 'pl-limit-qty', 10, 2);
    assertProblem(await reserve(base, { sku, qty: 3, userId: 'u-greedy' }), 422, 'per_user_limit_exceeded');
    const order = await reserveOk(base, sku, 2, 'u-payer');
    assert.equal((await transition(base, order.id, 'pay')).status, 200);
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-payer' }), 422, 'per_user_limit_exceeded');
    // A refund (cancel of a paid order) frees the allowance again.
    assert.equal((await transition(base, order.id, 'cancel')).status, 200);
    await reserveOk(base, sku, 2, 'u-payer');
  });

  test('the limit applies per SKU', async () => {
    const a = await freshSku(base, 'pl-limit-a', 10, 1);
    const b = await freshSku(base, 'pl-limit-b', 10, 1);
    await reserveOk(base, a, 1, 'u-two-skus');
    await reserveOk(base, b, 1, 'u-two-skus');
    assertProblem(await reserve(base, { sku: a, qty: 1, userId: 'u-two-skus' }), 422, 'per_user_limit_exceeded');
  });

  test('many concurrent reservations by one user never exceed maxPerUser', async () => {
    const sku = await freshSku(base, 'pl-limit-rush', 100, 2);
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => reserve(base, { sku, qty: 1, userId: 'u-rusher' })),
    );
    const created = responses.filter((response) => response.status === 201);
    assert.equal(created.length, 2);
    for (const response of responses.filter((r) => r.status !== 201)) {
      assertProblem(response, 422, 'per_user_limit_exceeded');
    }
    assert.equal((await getSku(base, sku)).reserved, 2);
  });

  test('a SKU without maxPerUser has no limit', async () => {
    const sku = await freshSku(base, 'pl-no-limit', 1_000);
    assert.equal((await getSku(base, sku)).maxPerUser, null);
    for (let i = 0; i < 5; i++) await reserveOk(base, sku, 100, 'u-unlimited');
    await reserveOk(base, sku, 500, 'u-unlimited');
    assert.deepEqual(ledger(await getSku(base, sku)), { total: 1_000, reserved: 1_000, sold: 0, available: 0 });
  });
});

describe('sold_out and insufficient_stock', () => {
  test('insufficient_stock when 0 < available < qty; sold_out when available == 0, whatever the qty', async () => {
    const sku = await freshSku(base, 'pl-stock', 3);
    const insufficient = assertProblem(
      await reserve(base, { sku, qty: 4, userId: 'u-stock' }),
      409,
      'insufficient_stock',
    );
    assert.equal(typeof insufficient.detail, 'string');
    assert.deepEqual(ledger(await getSku(base, sku)), { total: 3, reserved: 0, sold: 0, available: 3 });

    await reserveOk(base, sku, 2, 'u-stock');
    assertProblem(await reserve(base, { sku, qty: 2, userId: 'u-stock-2' }), 409, 'insufficient_stock');
    await reserveOk(base, sku, 1, 'u-stock-3');
    for (const qty of [1, 2, 1_000]) {
      assertProblem(await reserve(base, { sku, qty, userId: 'u-late' }), 409, 'sold_out');
    }
    assert.deepEqual(ledger(await getSku(base, sku)), { total: 3, reserved: 3, sold: 0, available: 0 });
  });

  test('a SKU created with no stock is sold out; an unknown SKU is 404 sku_not_found', async () => {
    const sku = await freshSku(base, 'pl-empty', 0);
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-empty' }), 409, 'sold_out');
    assertProblem(await reserve(base, { sku: nextSkuId('pl-missing'), qty: 1, userId: 'u-x' }), 404, 'sku_not_found');
  });
});

describe('adjustments', () => {
  test('a restock raises total and available; a write-off lowers them', async () => {
    const sku = await freshSku(base, 'pl-restock', 10);
    await reserveOk(base, sku, 3, 'u-adj');
    const order = await reserveOk(base, sku, 2, 'u-adj-2');
    assert.equal((await transition(base, order.id, 'pay')).status, 200);
    const before = await getSku(base, sku);
    assert.deepEqual(ledger(before), { total: 10, reserved: 3, sold: 2, available: 5 });

    const restock = await adjust(base, sku, 7);
    assert.equal(restock.status, 200, JSON.stringify(restock.body));
    assert.deepEqual(ledger(restock.body), { total: 17, reserved: 3, sold: 2, available: 12 });
    assert.ok(restock.body.version > before.version);
    assert.deepEqual(await getSku(base, sku), restock.body);

    const writeOff = await adjust(base, sku, -4);
    assert.equal(writeOff.status, 200, JSON.stringify(writeOff.body));
    assert.deepEqual(ledger(writeOff.body), { total: 13, reserved: 3, sold: 2, available: 8 });
  });

  test('a write-off below reserved + sold is 409 adjustment_below_committed; down to it exactly is fine', async () => {
    const sku = await freshSku(base, 'pl-write-off', 10);
    await reserveOk(base, sku, 3, 'u-w1');
    const paid = await reserveOk(base, sku, 2, 'u-w2');
    assert.equal((await transition(base, paid.id, 'pay')).status, 200);
    const before = await getSku(base, sku);

    assertProblem(await adjust(base, sku, -6), 409, 'adjustment_below_committed');
    assertProblem(await adjust(base, sku, -1_000), 409, 'adjustment_below_committed');
    assert.deepEqual(await getSku(base, sku), before, 'a refused adjustment changes nothing');

    const exact = await adjust(base, sku, -5);
    assert.equal(exact.status, 200, JSON.stringify(exact.body));
    assert.deepEqual(ledger(exact.body), { total: 5, reserved: 3, sold: 2, available: 0 });
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-w3' }), 409, 'sold_out');
    assertProblem(await adjust(base, sku, -1), 409, 'adjustment_below_committed');
  });

  test('a restock of a sold-out SKU makes it reservable again', async () => {
    const sku = await freshSku(base, 'pl-restock-sold-out', 1);
    await reserveOk(base, sku, 1, 'u-r1');
    assertProblem(await reserve(base, { sku, qty: 1, userId: 'u-r2' }), 409, 'sold_out');
    assert.equal((await adjust(base, sku, 1)).status, 200);
    await reserveOk(base, sku, 1, 'u-r2');
  });
});

describe('catalog listing GET /v1/skus', () => {
  const products = ['hoodie', 'hoodie-zip', 'piggy-shirt'];
  const sizes = ['L', 'M', 'S'];
  const colors = ['blue', 'red'];
  let catalog: TestService;
  /** Every SKU in the catalog service, as [product, size, color, sku]. */
  const expected: [string, string, string, string][] = [];

  function compareTuples(a: readonly string[], b: readonly string[]): number {
    for (let i = 0; i < a.length; i++) {
      if (a[i]! < b[i]!) return -1;
      if (a[i]! > b[i]!) return 1;
    }
    return 0;
  }

  before(async () => {
    catalog = await startTestService();
    // Created in an order unrelated to the index order, two SKUs for some attribute triples.
    let n = 0;
    const triples: [string, string, string][] = [];
    for (const color of [...colors].reverse())
      for (const size of sizes) for (const product of [...products].reverse()) triples.push([product, size, color]);
    for (const [product, size, color] of triples) {
      const copies = n % 3 === 0 ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const sku = `sku-${String(97 - n).padStart(3, '0')}-${c}`;
        n++;
        await createSku(catalog.url, sku, { initialStock: n, product, size, color });
        expected.push([product, size, color, sku]);
      }
    }
    expected.sort(compareTuples);
  });

  after(async () => {
    await catalog?.stop();
    catalog?.remove();
  });

  const tuple = (item: SkuView): [string, string, string, string] => [item.product, item.size, item.color, item.sku];

  test('one page lists every SKU ordered by (product, size, color, sku), with its ledger', async () => {
    const page = await api<Page<SkuView>>(catalog.url, 'GET', '/v1/skus?limit=500');
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(page.body.items.map(tuple), expected);
    assert.equal(page.body.nextCursor, null);
    for (const item of page.body.items) {
      const single = await readSku(catalog.url, item.sku);
      assert.deepEqual(item, single.body, 'a listed SKU is the same view as GET /v1/skus/{sku}');
    }
  });

  test('pagination with nextCursor visits every SKU exactly once, in order, at every page size', async () => {
    for (const limit of [1, 2, 3, 4, 7, expected.length, expected.length + 1]) {
      const items = await allPages<SkuView>(catalog.url, '/v1/skus', {}, limit);
      assert.deepEqual(items.map(tuple), expected, `limit ${limit}`);
    }
  });

  test('filters by product, size and color, alone and combined, paginated', async () => {
    const filters: Record<string, string>[] = [
      { product: 'piggy-shirt' },
      { product: 'hoodie', size: 'M' },
      { product: 'piggy-shirt', size: 'S', color: 'red' },
      { size: 'L' },
      { color: 'blue' },
      { size: 'M', color: 'red' },
      { product: 'hoodie', color: 'red' },
      { product: 'no-such-product' },
    ];
    for (const filter of filters) {
      const want = expected.filter(
        ([product, size, color]) =>
          (filter.product === undefined || filter.product === product) &&
          (filter.size === undefined || filter.size === size) &&
          (filter.color === undefined || filter.color === color),
      );
      for (const limit of [2, 500]) {
        const items = await allPages<SkuView>(catalog.url, '/v1/skus', filter, limit);
        assert.deepEqual(items.map(tuple), want, `${JSON.stringify(filter)} limit ${limit}`);
      }
    }
  });

  test('a cursor from another query is refused with 400 invalid_cursor', async () => {
    const page = await api<Page<SkuView>>(catalog.url, 'GET', '/v1/skus?product=hoodie&limit=1');
    assert.notEqual(page.body.nextCursor, null);
    assertProblem(
      await api(catalog.url, 'GET', `/v1/skus?product=piggy-shirt&limit=1&cursor=${page.body.nextCursor}`),
      400,
      'invalid_cursor',
    );
  });

  test('a listing reflects stock changes', async () => {
    const [, , , sku] = expected[0]!;
    await reserveOk(catalog.url, sku, 1, 'u-listing');
    const page = await api<Page<SkuView>>(catalog.url, 'GET', '/v1/skus?limit=1');
    assert.equal(page.body.items[0]!.sku, sku);
    assert.equal(page.body.items[0]!.reserved, 1);
  });
});

describe('catalog index follows updates', () => {
  test('changing the attributes of a SKU with PUT moves it in the listing', async () => {
    const sku = await freshSku(base, 'pl-moving');
    const product = nextSkuId('moving');
    const before = await api<Page<SkuView>>(base, 'GET', `/v1/skus?product=${product}`);
    assert.deepEqual(before.body.items, []);
    const moved = await putSku(base, sku, { product, size: 'XL', color: 'green', priceCents: 1999 });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const listed = await api<Page<SkuView>>(base, 'GET', `/v1/skus?product=${product}&size=XL&color=green`);
    assert.deepEqual(
      listed.body.items.map((item) => item.sku),
      [sku],
    );
    const old = await allPages<SkuView>(base, '/v1/skus', { product: 'piggy-shirt', size: 'M', color: 'red' }, 500);
    assert.ok(!old.some((item) => item.sku === sku), 'the old index entry is gone');
  });
});

describe('order listing GET /v1/orders', () => {
  let orders: TestService;
  const all: OrderView[] = [];

  before(async () => {
    orders = await startTestService();
    const skus = ['ol-a', 'ol-b', 'ol-c'];
    for (const sku of skus) await createSku(orders.url, sku, { initialStock: 100 });
    const users = ['u-ann', 'u-bob', 'u-cy'];
    for (let i = 0; i < 18; i++) {
      const order = await reserveOk(orders.url, skus[i % 3]!, 1 + (i % 2), users[Math.floor(i / 2) % 3]!);
      let state = 'created';
      if (i % 4 === 1) {
        assert.equal((await transition(orders.url, order.id, 'pay')).status, 200);
        state = 'paid';
      } else if (i % 4 === 2) {
        assert.equal((await transition(orders.url, order.id, 'cancel')).status, 200);
        state = 'cancelled';
      }
      all.push({ ...order, state });
    }
  });

  after(async () => {
    await orders?.stop();
    orders?.remove();
  });

  test('by userId, sku, state and their combinations: exactly the matching orders, each once', async () => {
    const queries: Record<string, string>[] = [
      {},
      { userId: 'u-ann' },
      { userId: 'u-cy' },
      { sku: 'ol-b' },
      { state: 'paid' },
      { state: 'created' },
      { state: 'cancelled' },
      { state: 'shipped' },
      { userId: 'u-bob', state: 'created' },
      { sku: 'ol-a', state: 'paid' },
      { userId: 'u-ann', sku: 'ol-c' },
      { userId: 'u-nobody' },
    ];
    for (const query of queries) {
      const want = all.filter(
        (order) =>
          (query.userId === undefined || order.userId === query.userId) &&
          (query.sku === undefined || order.sku === query.sku) &&
          (query.state === undefined || order.state === query.state),
      );
      for (const limit of [1, 2, 5, 500]) {
        const items = await listAllOrders(orders.url, query, limit);
        assert.equal(new Set(items.map((item) => item.id)).size, items.length, 'no order listed twice');
        assert.deepEqual(sortedIds(items), sortedIds(want), `${JSON.stringify(query)} limit ${limit}`);
        for (const item of items) {
          const expected = all.find((order) => order.id === item.id)!;
          assert.equal(item.state, expected.state);
          assert.equal(item.userId, expected.userId);
          assert.equal(item.sku, expected.sku);
        }
      }
    }
  });

  test('listed orders carry the same version as GET /v1/orders/{id}', async () => {
    const page = await api<Page<OrderView>>(orders.url, 'GET', '/v1/orders?userId=u-ann&limit=500');
    for (const item of page.body.items) {
      const single = await getOrder(orders.url, item.id);
      assert.deepEqual(item, single.body);
    }
  });
});

describe('POST /v1/orders:batch oversubscribing a SKU', () => {
  test('100 single-unit items on a SKU with 60 in stock: exactly 60 created, 40 refused for stock', async () => {
    const sku = await freshSku(base, 'pl-oversubscribed', 60);
    const items = Array.from({ length: 100 }, (_, i) => ({
      sku,
      qty: 1,
      userId: `u-rush-${i}`,
      idempotencyKey: freshIdempotencyKey('rush'),
    }));
    const response = await batch(base, items);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const results = response.body.results;
    assert.equal(results.length, 100);
    const created = results.filter((result) => result.status === 201);
    const refused = results.filter((result) => result.status !== 201);
    assert.equal(created.length, 60);
    assert.equal(refused.length, 40);
    for (const result of refused) {
      assert.equal(result.status, 409, JSON.stringify(result));
      assert.ok(
        result.body.code === 'sold_out' || result.body.code === 'insufficient_stock',
        JSON.stringify(result.body),
      );
    }
    for (const [i, result] of results.entries()) {
      if (result.status === 201) assert.equal(result.body.userId, items[i]!.userId, 'results in request order');
    }
    assert.equal(new Set(created.map((result) => result.body.id)).size, 60);
    assert.deepEqual(ledger(await getSku(base, sku)), { total: 60, reserved: 60, sold: 0, available: 0 });
    const listed = await listAllOrders(base, { sku });
    assert.deepEqual(sortedIds(listed), sortedIds(created.map((result) => result.body as unknown as OrderView)));
  });

  test('200 concurrent single reservations on a SKU with 60 in stock: exactly 60 created', async () => {
    const sku = await freshSku(base, 'pl-rush-single', 60);
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => reserve(base, { sku, qty: 1, userId: `u-single-rush-${i}` })),
    );
    const created = responses.filter((response) => response.status === 201);
    assert.equal(created.length, 60);
    for (const response of responses.filter((r) => r.status !== 201)) {
      const problem = assertProblem(response, 409, response.body.code as ErrorCode);
      assert.ok(problem.code === 'sold_out' || problem.code === 'insufficient_stock');
    }
    assert.deepEqual(ledger(await getSku(base, sku)), { total: 60, reserved: 60, sold: 0, available: 0 });
  });

  test('a batch mixing quantities never oversells: the accepted units fit the stock exactly', async () => {
    const sku = await freshSku(base, 'pl-mixed-batch', 50);
    const items = Array.from({ length: 40 }, (_, i) => ({
      sku,
      qty: 1 + (i % 4),
      userId: `u-mix-${i}`,
      idempotencyKey: freshIdempotencyKey('mix'),
    }));
    const response = await batch(base, items);
    assert.equal(response.status, 200);
    let units = 0;
    for (const [i, result] of response.body.results.entries()) {
      if (result.status === 201) units += items[i]!.qty;
      else assert.ok(['sold_out', 'insufficient_stock'].includes(result.body.code as string));
    }
    const stock = await getSku(base, sku);
    assert.equal(stock.reserved, units);
    assert.equal(stock.available, 50 - units);
    assert.ok(stock.available >= 0);
    // Demand (100 units) exceeds stock, so some item was refused; it was refused because its qty
    // (at most 4) did not fit, and available only fell after that: the leftover is under 4.
    assert.ok(stock.available < 4, `leftover ${stock.available} is smaller than the largest refused qty`);
  });
});
