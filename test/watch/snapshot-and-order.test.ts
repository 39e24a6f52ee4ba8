// A real SSE client sees a snapshot, then every committed change of its SKUs
// in revision order, whoever committed it: this engine, or a commit that
// reached the store some other way (as another instance's would).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SkuRecord } from '../../src/domain/types.ts';
import { freshSku, getSku, ledger } from '../support/api-helpers.ts';
import { createSku, reserve, startTestService, type TestService } from '../support/service.ts';
import { assertAscending, commitSkuRecord, stockRevisions, watch } from '../support/watch.ts';

let server: TestService;
before(async () => {
  server = await startTestService();
});
after(async () => {
  await server.stop();
  server.remove();
});

test('a snapshot, then one stock event per commit, ids = revisions, ascending, ending at the SKU state', async () => {
  const sku = await freshSku(server.url, 'watch-order', 500);
  const other = await freshSku(server.url, 'watch-other', 500);
  const watcher = watch(server.url, `sku=${sku}`);
  try {
    const snapshot = await watcher.waitFor((event) => event.type === 'snapshot');
    const items = snapshot.data.skus as Record<string, unknown>[];
    assert.equal(items.length, 1);
    assert.deepEqual(ledger(items[0] as never), { total: 500, reserved: 0, sold: 0, available: 500 });
    assert.equal(Number(snapshot.id), snapshot.data.revision);

    // Sequential and concurrent reservations, plus a reservation on a SKU this watch does not follow.
    const versions: number[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await reserve(server.url, { sku, qty: 1, userId: `seq-${i}` });
      assert.equal(response.status, 201);
      versions.push(response.body.version as number);
    }
    const concurrent = await Promise.all(
      Array.from({ length: 40 }, (_, i) => reserve(server.url, { sku, qty: 1, userId: `par-${i}` })),
    );
    for (const response of concurrent) assert.equal(response.status, 201);
    assert.equal((await reserve(server.url, { sku: other, qty: 1, userId: 'elsewhere' })).status, 201);

    const last = await watcher.waitFor((event) => event.type === 'stock' && event.data.reserved === 45);
    const revisions = stockRevisions(watcher.events);
    assertAscending(revisions, 'stock events');
    // One event per commit: exactly the revisions of the batches that committed these reservations.
    const committed = new Set([...versions, ...concurrent.map((response) => response.body.version as number)]);
    assert.deepEqual(
      revisions,
      [...committed].sort((a, b) => a - b),
    );
    for (const event of watcher.events.filter((e) => e.type === 'stock')) {
      assert.equal(event.data.sku, sku, 'only the watched SKU');
      assert.equal(event.data.revision, Number(event.id));
      assert.equal(event.data.version, Number(event.id));
      assert.ok(Number(event.id) > Number(snapshot.id));
    }
    // Reservations only ever raise `reserved`: events in revision order show it rising.
    const reserved = watcher.events.filter((e) => e.type === 'stock').map((e) => e.data.reserved as number);
    assert.deepEqual(
      reserved,
      [...reserved].sort((a, b) => a - b),
    );
    assert.deepEqual(ledger(last.data as never), ledger(await getSku(server.url, sku)));
    console.log(
      `# ${revisions.length} stock events for 45 reservations, revisions ${revisions[0]}..${revisions.at(-1)}`,
    );
  } finally {
    watcher.close();
  }
});

test('?product= follows every SKU of the product, including one created after the watch began', async () => {
  const product = `watch-product-${process.pid}`;
  await createSku(server.url, `${product}-s`, { initialStock: 5, product, size: 'S' });
  const watcher = watch(server.url, `product=${product}`);
  try {
    const snapshot = await watcher.waitFor((event) => event.type === 'snapshot');
    assert.deepEqual(
      (snapshot.data.skus as { sku: string }[]).map((item) => item.sku),
      [`${product}-s`],
    );
    await createSku(server.url, `${product}-m`, { initialStock: 7, product, size: 'M' });
    await createSku(server.url, 'not-in-product', { initialStock: 7, product: `${product}-x` });
    assert.equal((await reserve(server.url, { sku: `${product}-s`, qty: 2, userId: 'p1' })).status, 201);
    await watcher.waitFor((event) => event.data.sku === `${product}-s` && event.data.reserved === 2);
    const skus = new Set(watcher.events.filter((e) => e.type === 'stock').map((e) => e.data.sku));
    assert.deepEqual([...skus].sort(), [`${product}-m`, `${product}-s`]);
    assertAscending(stockRevisions(watcher.events), 'product events');
  } finally {
    watcher.close();
  }
});

test('a commit that reaches the store without this engine (as another instance would make) reaches watchers', async () => {
  const sku = await freshSku(server.url, 'watch-feed', 10);
  const watcher = watch(server.url, `sku=${sku}`);
  try {
    await watcher.waitFor((event) => event.type === 'snapshot');
    const current = await getSku(server.url, sku);
    const record: SkuRecord = {
      sku,
      product: current.product,
      size: current.size,
      color: current.color,
      priceCents: current.priceCents,
      maxPerUser: current.maxPerUser,
      total: 25,
      reserved: 0,
      sold: 0,
      orderSeq: 0,
      initialStock: 25,
    };
    const revision = await commitSkuRecord(server.service.store, record);
    const event = await watcher.waitFor((e) => e.type === 'stock');
    assert.equal(Number(event.id), revision);
    assert.equal(event.data.available, 25);
  } finally {
    watcher.close();
  }
});
