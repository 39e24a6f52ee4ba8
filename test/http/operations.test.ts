// The operational surface: liveness, readiness, Prometheus metrics that move
// with traffic, the OpenAPI document and UI, and the sweeper's cleanup of
// lapsed idempotency records (a reservation's key lives as long as its order).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adjust } from '../support/api-helpers.ts';
import {
  api,
  createSku,
  freshIdempotencyKey,
  reserve,
  startTestService,
  type TestService,
} from '../support/service.ts';

let server: TestService;
let base: string;

before(async () => {
  server = await startTestService({ idempotencyTtlMs: 1_000, sweepIntervalMs: 60_000 });
  base = server.url;
});

after(async () => {
  await server.stop();
  server.remove();
});

/** The value of one sample in Prometheus text format, or undefined if absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('health and readiness', () => {
  test('/healthz and /readyz answer 200 without a key', async () => {
    const health = await api(base, 'GET', '/healthz', { key: null });
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok' });
    const ready = await api(base, 'GET', '/readyz', { key: null });
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready' });
  });
});

describe('metrics', () => {
  test('reservation outcomes, request latency, commit latency and batch size move with traffic', async () => {
    await createSku(base, 'metered', { initialStock: 1 });
    const before = (await api<string>(base, 'GET', '/metrics', { key: null })).body;
    assert.equal((await reserve(base, { sku: 'metered', qty: 1, userId: 'm1' })).status, 201);
    assert.equal((await reserve(base, { sku: 'metered', qty: 1, userId: 'm2' })).status, 409);
    const response = await api<string>(base, 'GET', '/metrics', { key: null });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = response.body;
    const delta = (name: string, labels = '') =>
      (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    assert.equal(delta('hotstock_reservations_total', '{result="created"}'), 1);
    assert.equal(delta('hotstock_reservations_total', '{result="sold_out"}'), 1);
    assert.ok(delta('hotstock_store_commit_duration_seconds_count') >= 1);
    assert.ok(delta('hotstock_batch_operations_count') >= 1);
    assert.ok(
      (sample(
        text,
        'hotstock_http_request_duration_seconds_count',
        '{route="/v1/orders",method="POST",status="201"}',
      ) ?? 0) >= 1,
      'request latency is labelled by route, method and status',
    );
    assert.notEqual(sample(text, 'hotstock_engine_queue_depth'), undefined);
    assert.notEqual(sample(text, 'process_resident_memory_bytes'), undefined);
  });
});

describe('OpenAPI', () => {
  test('/docs/json documents every v1 route and /docs serves the UI', async () => {
    const spec = await api<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
      base,
      'GET',
      '/docs/json',
      {
        key: null,
      },
    );
    assert.equal(spec.status, 200);
    assert.match(spec.body.openapi, /^3\./);
    const expected: [string, string][] = [
      ['/v1/skus/{sku}', 'put'],
      ['/v1/skus/{sku}', 'get'],
      ['/v1/skus/{sku}/adjustments', 'post'],
      ['/v1/skus', 'get'],
      ['/v1/orders', 'post'],
      ['/v1/orders', 'get'],
      ['/v1/orders:batch', 'post'],
      ['/v1/orders/{id}', 'get'],
      ['/v1/orders/{id}/pay', 'post'],
      ['/v1/orders/{id}/ship', 'post'],
      ['/v1/orders/{id}/complete', 'post'],
      ['/v1/orders/{id}/cancel', 'post'],
      ['/metrics', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
    ];
    for (const [path, method] of expected) {
      assert.ok(spec.body.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    }
    const ui = await fetch(`${base}/docs/`);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /swagger-ui/i);
  });
});

describe('idempotency records lapse', () => {
  test('after --idempotency-ttl-ms a mutation key is decided afresh and the sweeper deletes its record; a reservation key keeps its order', async () => {
    await createSku(base, 'lapsing', { initialStock: 10 });
    const key = freshIdempotencyKey('lapse');
    const first = await adjust(base, 'lapsing', 1, { 'idempotency-key': key });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const reused = await adjust(base, 'lapsing', 2, { 'idempotency-key': key });
    assert.equal(reused.status, 422, 'within the TTL a different body is refused');
    const orderKey = freshIdempotencyKey('lapse-order');
    const order = await reserve(base, { sku: 'lapsing', qty: 1, userId: 'l1' }, orderKey);
    assert.equal(order.status, 201);

    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const report = await server.service.sweeper.sweep();
    assert.ok(report.idempotencyRecordsDropped >= 1, JSON.stringify(report));
    const fresh = await adjust(base, 'lapsing', 2, { 'idempotency-key': key });
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.equal(fresh.headers.get('idempotent-replayed'), null);
    assert.equal(fresh.body.total, 13, 'both adjustments applied, each once');
    // A reservation's key is its order's id: it replays for as long as the order exists.
    const replay = await reserve(base, { sku: 'lapsing', qty: 1, userId: 'l1' }, orderKey);
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, order.body);
  });
});
