// Safe retries and preconditions: adjustments need an Idempotency-Key; a
// header a route cannot honour is refused, not ignored; If-None-Match gives
// 304 on versioned reads; a 201 says where the resource is; cursors are
// opaque, tamper-evident and bound to their query; every method a known path
// does not serve is 405 with Allow; validation errors name the field in plain
// words. Every refusal is checked to change nothing (the store revision).
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { before, describe, test } from 'node:test';
import type { OrderView, SkuView } from '../../src/http/views.ts';
import { adjust, freshSku, getSku, putSku, reserveOk } from '../support/api-helpers.ts';
import { assertProblem } from '../support/assertions.ts';
import { rawRequest } from '../support/raw-http.ts';
import {
  adminKey,
  api,
  clientKey,
  freshIdempotencyKey,
  reserve,
  startTestService,
  useTestService,
} from '../support/service.ts';

const server = useTestService();

async function revision(): Promise<number> {
  const status = await api<{ store: { revision: number } }>(server.url, 'GET', '/v1/admin/status', { key: adminKey });
  return status.body.store.revision;
}

/** Runs `refused` and checks the store revision did not move. */
async function changesNothing<T>(refused: () => Promise<T>): Promise<T> {
  const before = await revision();
  const result = await refused();
  assert.equal(await revision(), before, 'a refused request changes nothing');
  return result;
}

describe('adjustments', () => {
  test('need an Idempotency-Key, and a retry with the same key adds the stock once', async () => {
    const sku = await freshSku(server.url, 'adjust-key', 5);
    const refused = await changesNothing(() =>
      api(server.url, 'POST', `/v1/skus/${sku}/adjustments`, { key: adminKey, body: { delta: 5, reason: 'restock' } }),
    );
    const problem = assertProblem(refused, 400, 'idempotency_key_required');
    assert.deepEqual(problem.errors, [
      {
        location: 'headers',
        pointer: '/idempotency-key',
        message: problem.detail,
      },
    ]);
    const key = freshIdempotencyKey('restock');
    const first = await adjust(server.url, sku, 5, { 'idempotency-key': key });
    const retry = await adjust(server.url, sku, 5, { 'idempotency-key': key });
    assert.equal(first.status, 200);
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal((await getSku(server.url, sku)).total, 10, 'restocked once');
  });
});

describe('headers a route cannot honour are refused', () => {
  test('If-Match on POST /v1/orders: 400 unsupported_header, no order', async () => {
    const sku = await freshSku(server.url, 'if-match-post', 5);
    const response = await changesNothing(() =>
      api(server.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: 'u1' },
        headers: { 'idempotency-key': freshIdempotencyKey(), 'if-match': '"1"' },
      }),
    );
    const problem = assertProblem(response, 400, 'unsupported_header');
    assert.equal(problem.header, 'if-match');
    assert.equal((await getSku(server.url, sku)).reserved, 0);
  });

  test('Idempotency-Key on the batch (its items carry their own), If-None-Match on a listing, dates anywhere', async () => {
    const sku = await freshSku(server.url, 'batch-key', 5);
    const cases: [string, string, Record<string, string>, unknown][] = [
      [
        'POST',
        '/v1/orders:batch',
        { 'idempotency-key': 'k-1' },
        { items: [{ sku, qty: 1, userId: 'u', idempotencyKey: 'i1' }] },
      ],
      ['GET', '/v1/skus', { 'if-none-match': '"3"' }, undefined],
      ['GET', `/v1/skus/${sku}`, { 'if-modified-since': 'Wed, 21 Oct 2015 07:28:00 GMT' }, undefined],
      [
        'POST',
        `/v1/skus/${sku}/adjustments`,
        { 'idempotency-key': 'k-2', 'if-none-match': '*' },
        { delta: 1, reason: 'r' },
      ],
    ];
    for (const [method, path, headers, body] of cases) {
      const response = await changesNothing(() =>
        api(server.url, method, path, { key: adminKey, headers, ...(body === undefined ? {} : { body }) }),
      );
      assertProblem(response, 400, 'unsupported_header');
    }
    assert.equal((await getSku(server.url, sku)).reserved, 0);
  });
});

describe('versioned reads and creations', () => {
  test('If-None-Match with the current ETag is 304 with no body; a stale one gets the resource', async () => {
    const sku = await freshSku(server.url, 'not-modified', 5);
    const first = await api<SkuView>(server.url, 'GET', `/v1/skus/${sku}`);
    const tag = first.headers.get('etag')!;
    assert.match(tag, /^"\d+"$/);
    for (const header of [tag, `W/${tag}`, `"1", ${tag}`, '*']) {
      const cached = await api(server.url, 'GET', `/v1/skus/${sku}`, { headers: { 'if-none-match': header } });
      assert.equal(cached.status, 304, `If-None-Match: ${header}`);
      assert.equal(cached.body, undefined);
      assert.equal(cached.headers.get('etag'), tag);
    }
    await reserveOk(server.url, sku, 1, 'u1');
    const changed = await api<SkuView>(server.url, 'GET', `/v1/skus/${sku}`, { headers: { 'if-none-match': tag } });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.reserved, 1);
    assert.notEqual(changed.headers.get('etag'), tag);
  });

  test('an order: 304 on its ETag, 412 on If-Match with another', async () => {
    const sku = await freshSku(server.url, 'order-etag', 5);
    const order = await reserveOk(server.url, sku, 1, 'u1');
    const path = `/v1/orders/${encodeURIComponent(order.id)}`;
    const cached = await api(server.url, 'GET', path, { headers: { 'if-none-match': `"${order.version}"` } });
    assert.equal(cached.status, 304);
    assertProblem(await api(server.url, 'GET', path, { headers: { 'if-match': '"1"' } }), 412, 'precondition_failed');
    assert.equal((await api(server.url, 'GET', path, { headers: { 'if-match': `"${order.version}"` } })).status, 200);
  });

  test('a 201 carries Location, which answers the created resource', async () => {
    const sku = `located ${Date.now()}`.replace(' ', '-');
    const created = await putSku(server.url, sku, {
      product: 'p',
      size: 'M',
      color: 'red',
      priceCents: 1,
      initialStock: 3,
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), `/v1/skus/${encodeURIComponent(sku)}`);
    const updated = await putSku(server.url, sku, { product: 'p', size: 'M', color: 'red', priceCents: 2 });
    assert.equal(updated.status, 200);
    assert.equal(updated.headers.get('location'), null, 'an update creates nothing');

    const key = freshIdempotencyKey();
    const reserved = await reserve(server.url, { sku, qty: 1, userId: 'u1' }, key);
    assert.equal(reserved.status, 201);
    const location = reserved.headers.get('location')!;
    assert.equal(location, `/v1/orders/${encodeURIComponent(String(reserved.body.id))}`);
    const order = await api<OrderView>(server.url, 'GET', location);
    assert.equal(order.status, 200);
    assert.equal(order.body.id, reserved.body.id);
    const replay = await reserve(server.url, { sku, qty: 1, userId: 'u1' }, key);
    assert.equal(replay.headers.get('location'), location, 'a replayed 201 says the same');
  });

  test('an identical create PUT replays instead of answering 422; a different one is still refused', async () => {
    const sku = `replayed-create-${Date.now()}`;
    const body = { product: 'p', size: 'M', color: 'red', priceCents: 1, initialStock: 3 };
    assert.equal((await putSku(server.url, sku, body)).status, 201);
    const again = await putSku(server.url, sku, body);
    assert.ok(again.status === 200 || again.status === 201, JSON.stringify(again.body));
    assert.equal((await getSku(server.url, sku)).total, 3, 'the stock was received once');
    const other = await putSku(server.url, sku, { ...body, initialStock: 4 });
    assertProblem(other, 422, 'initial_stock_not_allowed');
  });
});

describe('cursors', () => {
  let sku: string;
  const user = 'cursor-user@example.com';

  before(async () => {
    sku = await freshSku(server.url, 'cursored', 20);
    for (let i = 0; i < 4; i++) await reserveOk(server.url, sku, 1, user);
  });

  async function firstPage(): Promise<string> {
    const page = await api<{ nextCursor: string | null }>(
      server.url,
      'GET',
      `/v1/orders?userId=${encodeURIComponent(user)}&limit=1`,
    );
    assert.equal(page.status, 200);
    assert.ok(page.body.nextCursor !== null);
    return page.body.nextCursor;
  }

  test('say nothing of the query: no user id, SKU or key inside, and two cursors to one place differ', async () => {
    const cursor = await firstPage();
    const bytes = Buffer.from(cursor, 'base64url').toString('latin1');
    for (const secret of [user, sku, 'user-orders', 'idx'])
      assert.ok(!bytes.includes(secret), `the cursor names ${secret}`);
    assert.notEqual(await firstPage(), cursor, 'sealed afresh each time');
  });

  test('the last page has no nextCursor, whatever the page size', async () => {
    const query = `/v1/orders?userId=${encodeURIComponent(user)}`;
    const whole = await api<{ items: OrderView[]; nextCursor: string | null }>(server.url, 'GET', `${query}&limit=4`);
    assert.equal(whole.body.items.length, 4);
    assert.equal(whole.body.nextCursor, null, 'exactly a page: no cursor to an empty page');
    const first = await api<{ nextCursor: string | null }>(server.url, 'GET', `${query}&limit=2`);
    const second = await api<{ items: OrderView[]; nextCursor: string | null }>(
      server.url,
      'GET',
      `${query}&limit=2&cursor=${first.body.nextCursor}`,
    );
    assert.equal(second.body.items.length, 2);
    assert.equal(second.body.nextCursor, null);
  });

  test('another instance with the same API keys takes them; one with another --cursor-secret refuses them', async () => {
    const cursor = await firstPage();
    const path = `/v1/orders?userId=${encodeURIComponent(user)}&cursor=${cursor}`;
    const sameKeys = await startTestService();
    const otherSecret = await startTestService({ cursorSecret: 'another-secret-of-at-least-32-characters' });
    try {
      assert.equal((await api(sameKeys.url, 'GET', path)).status, 200, 'derived from the same API keys');
      assertProblem(await api(otherSecret.url, 'GET', path), 400, 'invalid_cursor');
    } finally {
      for (const other of [sameKeys, otherSecret]) {
        await other.stop();
        other.remove();
      }
    }
  });

  test('work with the same filters and any page size', async () => {
    const cursor = await firstPage();
    const next = await api<{ items: OrderView[] }>(
      server.url,
      'GET',
      `/v1/orders?userId=${encodeURIComponent(user)}&limit=10&cursor=${cursor}`,
    );
    assert.equal(next.status, 200);
    assert.equal(next.body.items.length, 3);
  });

  test('altered in any byte, or moved to another query, are 400 invalid_cursor', async () => {
    const cursor = await firstPage();
    const bytes = Buffer.from(cursor, 'base64url');
    const tampered: string[] = [];
    for (const at of [0, 1, 13, 29, bytes.length - 1]) {
      const copy = Buffer.from(bytes);
      copy[at] = copy[at]! ^ 0x01;
      tampered.push(copy.toString('base64url'));
    }
    tampered.push(bytes.subarray(0, bytes.length - 1).toString('base64url'), `${cursor}A`, 'AAAA');
    for (const bad of tampered) {
      const response = await api(server.url, 'GET', `/v1/orders?userId=${encodeURIComponent(user)}&cursor=${bad}`);
      assertProblem(response, 400, 'invalid_cursor');
    }
    for (const moved of [
      `/v1/orders?userId=someone-else&cursor=${cursor}`,
      `/v1/orders?userId=${encodeURIComponent(user)}&state=paid&cursor=${cursor}`,
      `/v1/orders?cursor=${cursor}`,
      `/v1/skus?cursor=${cursor}`,
    ]) {
      assertProblem(await api(server.url, 'GET', moved), 400, 'invalid_cursor');
    }
  });
});

describe('methods a path does not serve', () => {
  /** node:http sends any method token, as curl -X would. */
  function send(method: string, path: string): Promise<{ status: number; allow: string | undefined; body: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${clientKey}` },
      });
      request.on('response', (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, allow: response.headers.allow as string | undefined, body }),
        );
      });
      request.on('error', reject);
      request.end();
    });
  }

  test('TRACE, QUERY, OPTIONS, PROPFIND, DELETE on known paths: 405 with Allow', async () => {
    const sku = await freshSku(server.url, 'methods', 1);
    for (const [method, path, allow] of [
      ['TRACE', `/v1/skus/${sku}`, ['PUT', 'GET', 'HEAD']],
      ['QUERY', '/v1/orders', ['POST', 'GET', 'HEAD']],
      ['OPTIONS', '/v1/orders', ['POST', 'GET', 'HEAD']],
      ['PROPFIND', '/healthz', ['GET', 'HEAD']],
      ['DELETE', `/v1/skus/${sku}`, ['PUT', 'GET', 'HEAD']],
      ['TRACE', '/v1/watch', ['GET', 'HEAD', 'OPTIONS']],
    ] as const) {
      const response = await changesNothing(() => send(method, path));
      assert.equal(response.status, 405, `${method} ${path}: ${response.body}`);
      assert.deepEqual(response.allow?.split(', ').sort(), [...allow].sort(), `${method} ${path}`);
      assert.equal(JSON.parse(response.body).code, 'method_not_allowed');
    }
    // Through the raw client too, so the conformance check sees a TRACE.
    const raw = await rawRequest(server.url, `TRACE /v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(raw.status, 405);
  });
});

describe('validation errors in plain words', () => {
  const cases: [string, Record<string, unknown> | unknown[], string, RegExp][] = [
    ['delta 0', { delta: 0, reason: 'r' }, '/delta', /^delta must be a non-zero integer .*, got 0$/],
    [
      'an unknown field',
      { delta: 1, reason: 'r', note: 'x' },
      '/note',
      /unknown field "note"; the fields are delta, reason$/,
    ],
    ['no reason', { delta: 1 }, '/reason', /^reason is required: 1 to 256 characters, no control characters$/],
    ['a string delta', { delta: '1', reason: 'r' }, '/delta', /^delta must be an integer .*, got "1"/],
    [
      'a reason with a newline',
      { delta: 1, reason: 'a\nb' },
      '/reason',
      /^reason must be 1 to 256 characters, no control characters, got/,
    ],
  ];
  for (const [name, body, pointer, message] of cases) {
    test(`an adjustment with ${name}: the field's pointer, what was wrong, what is allowed`, async () => {
      const sku = await freshSku(server.url, 'words', 1);
      const response = await changesNothing(() =>
        api(server.url, 'POST', `/v1/skus/${sku}/adjustments`, {
          key: adminKey,
          body,
          headers: { 'idempotency-key': freshIdempotencyKey() },
        }),
      );
      const problem = assertProblem(response, 400, 'validation_failed');
      const [issue] = problem.errors as { location: string; pointer: string; message: string }[];
      assert.equal(issue?.location, 'body');
      assert.equal(issue?.pointer, pointer);
      assert.match(issue?.message ?? '', message);
      assert.equal(problem.detail, issue?.message);
      assert.doesNotMatch(problem.detail as string, /\\p\{|\^\[|must NOT/, 'no regular expression, no Ajv jargon');
    });
  }

  test('an order state outside the list names the allowed values; a limit must be digits', async () => {
    const state = assertProblem(await api(server.url, 'GET', '/v1/orders?state=lost'), 400, 'validation_failed');
    assert.match(state.detail as string, /^\?state must be one of "created", "paid", .*, got "lost"/);
    for (const limit of ['1e2', '0x10', '%205', '-1']) {
      const problem = assertProblem(
        await api(server.url, 'GET', `/v1/orders?limit=${limit}`),
        400,
        'validation_failed',
      );
      assert.match(problem.detail as string, /^\?limit must be an integer/);
    }
  });
});
