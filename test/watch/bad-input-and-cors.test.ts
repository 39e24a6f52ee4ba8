// /v1/watch refuses bad input with a 4xx problem+json and a stable code, caps
// its subscribers with a 503, answers CORS preflights, and heartbeats.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { freshSku } from '../support/api-helpers.ts';
import { assertProblem } from '../support/assertions.ts';
import { api, createSku, startTestService, type TestService } from '../support/service.ts';
import { eventually, rawWatch } from '../support/watch.ts';

let server: TestService;
let sku: string;
before(async () => {
  server = await startTestService({ watchSubscribersMax: 3, watchHeartbeatIntervalMs: 100 });
  sku = await freshSku(server.url, 'watch-input', 10);
});
after(async () => {
  await server.stop();
  server.remove();
});

const get = (path: string, headers: Record<string, string> = {}, key?: string | null) =>
  api(server.url, 'GET', path, { headers, key, timeoutMs: 10_000 });

test('bad filters, ids and parameters are 4xx problems with stable codes', async () => {
  const cases: [string, number, Parameters<typeof assertProblem>[2]][] = [
    ['/v1/watch', 400, 'invalid_watch_filter'],
    [`/v1/watch?sku=${sku}&product=piggy-shirt`, 400, 'invalid_watch_filter'],
    [`/v1/watch?sku=${sku},,${sku}`, 400, 'invalid_watch_filter'],
    [`/v1/watch?sku=${sku},a%20b`, 400, 'invalid_watch_filter'],
    [`/v1/watch?sku=${Array.from({ length: 300 }, (_, i) => `s${i}`).join(',')}`, 400, 'invalid_watch_filter'],
    ['/v1/watch?sku=', 400, 'validation_failed'],
    [`/v1/watch?sku=${sku}&sku=${sku}`, 400, 'validation_failed'],
    [`/v1/watch?sku=${sku}&since=3`, 400, 'validation_failed'],
    [`/v1/watch?sku=${sku}&lastEventId=-1`, 400, 'invalid_last_event_id'],
    [`/v1/watch?sku=${sku}&lastEventId=99999999999999999`, 400, 'invalid_last_event_id'],
    [`/v1/watch?sku=${sku},no-such-sku`, 404, 'sku_not_found'],
    ['/v1/watch?product=no-such-product', 404, 'sku_not_found'],
  ];
  for (const [path, status, code] of cases) {
    const response = await get(path);
    assertProblem(response, status, code);
    assert.equal(response.headers.get('access-control-allow-origin'), '*', `${path}: CORS on errors too`);
  }
  const unknown = await get(`/v1/watch?sku=${sku},no-such-sku`);
  assert.deepEqual(unknown.body.unknownSkus, ['no-such-sku']);
  assertProblem(await get(`/v1/watch?sku=${sku}`, { 'last-event-id': 'abc' }), 400, 'invalid_last_event_id');
  assertProblem(await get(`/v1/watch?sku=${sku}`, { 'last-event-id': '1.5' }), 400, 'invalid_last_event_id');
  assertProblem(await get(`/v1/watch?sku=${sku}`, {}, null), 401, 'unauthorized');
  assertProblem(await get(`/v1/watch?sku=${sku}`, {}, 'not-a-known-key'), 401, 'unauthorized');
  assertProblem(await api(server.url, 'POST', `/v1/watch?sku=${sku}`, { body: {} }), 405, 'method_not_allowed');
  assert.equal(server.service.watch.subscriberCount, 0, 'no refused request became a watcher');
});

test('CORS: a preflight from another origin is allowed, and streams carry Access-Control-Allow-Origin', async () => {
  const preflight = await fetch(`${server.url}/v1/watch?sku=${sku}`, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://shop.example',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization, last-event-id',
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
  assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /GET/);
  const allowed = preflight.headers.get('access-control-allow-headers') ?? '';
  for (const header of ['authorization', 'last-event-id']) assert.ok(allowed.includes(header), `allows ${header}`);

  const watcher = rawWatch(server.url, `sku=${sku}`, { origin: 'https://shop.example' });
  await watcher.waitFor(/event: snapshot\n/);
  const head = watcher.received().split('\r\n\r\n')[0]!.toLowerCase();
  assert.match(head, /^http\/1\.1 200/);
  assert.match(head, /access-control-allow-origin: \*/);
  assert.match(head, /content-type: text\/event-stream/);
  assert.match(head, /cache-control: no-store/);
  watcher.socket.destroy();
  await watcher.closed;
});

test('heartbeats reach idle watchers; past the subscriber cap a watch gets 503 watch_full with Retry-After', async () => {
  const watchers = [0, 1, 2].map(() => rawWatch(server.url, `sku=${sku}`));
  try {
    for (const watcher of watchers) await watcher.waitFor(/event: snapshot\n/);
    // Heartbeat comments every 100 ms here (--watch-heartbeat-interval-ms).
    await watchers[0]!.waitFor(/\n\n:\n\n:\n\n/);
    const refused = await get(`/v1/watch?sku=${sku}`);
    assert.equal(refused.status, 503);
    assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(refused.body.code, 'watch_full');
    assert.ok(refused.headers.get('retry-after'));
  } finally {
    for (const watcher of watchers) watcher.socket.destroy();
  }
  await eventually(() => server.service.watch.subscriberCount === 0, 'watchers released');
  const again = rawWatch(server.url, `sku=${sku}`);
  await again.waitFor(/event: snapshot\n/);
  again.socket.destroy();
});

test('with --watch-public the watch needs no API key', async () => {
  const open = await startTestService({ watchPublic: true });
  try {
    await createSku(open.url, 'public-sku', { initialStock: 3 });
    const controller = new AbortController();
    const dispatcher = new Agent({ connections: 1 });
    const response = await undiciFetch(`${open.url}/v1/watch?sku=public-sku`, {
      signal: controller.signal,
      dispatcher,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await dispatcher.destroy();
    await eventually(() => open.service.watch.subscriberCount === 0, 'public watcher released');
  } finally {
    await open.stop();
    open.remove();
  }
});
