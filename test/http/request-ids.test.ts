// Request ids and the log, on a real `hotstock serve --log-level debug`: a
// sane X-Request-ID is kept and returned, anything else is replaced by a
// generated id and never echoed (not in the response, not in the log); every
// request gets an id back, errors (the router's own too) and the watch stream
// included; the access log writes one debug line per request carrying its
// id; every line has an ISO time and a level name.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requestIdLengthMax } from '../../src/constants.ts';
import { sleep } from '../support/load.ts';
import {
  clientKey,
  createSku,
  killIfRunning,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Longest the test waits for a log line to reach the server's output. */
const logWaitMs = 10_000;

let server: ServerProcess;
const data = tempDataDir('hotstock-request-ids');

before(async () => {
  server = await spawnServer(data.dir, ['--log-level', 'debug']);
});

after(async () => {
  await killIfRunning(server);
  data.remove();
});

interface LogLine {
  level: unknown;
  time: unknown;
  msg?: string;
  requestId?: string;
  url?: string;
  statusCode?: number;
  route?: string;
}

function logLines(): LogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** The access line of the request with this id, once the server has written it. */
async function accessLine(requestId: string): Promise<LogLine> {
  const deadline = Date.now() + logWaitMs;
  for (;;) {
    const line = logLines().find(
      (candidate) => candidate.requestId === requestId && candidate.msg === 'request completed',
    );
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no access line for ${requestId} in:\n${server.output()}`);
    await sleep(20);
  }
}

async function get(path: string, headers: Record<string, string> | [string, string][] = {}): Promise<Response> {
  const response = await fetch(`${server.url}${path}`, { headers });
  await response.arrayBuffer();
  return response;
}

test('a sane X-Request-ID is kept, returned and logged on the access line at debug level', async () => {
  const id = 'checkout-7f3a_9.b:2';
  const response = await get('/v1/skus', { authorization: `Bearer ${clientKey}`, 'x-request-id': id });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-request-id'), id);
  const line = await accessLine(id);
  assert.equal(line.level, 'debug');
  assert.equal(line.url, '/v1/skus');
  assert.equal(line.route, '/v1/skus');
  assert.equal(line.statusCode, 200);
});

test('an unacceptable X-Request-ID is replaced by a generated one and never echoed', async () => {
  const hostile: (string | [string, string][])[] = [
    'x'.repeat(requestIdLengthMax + 1),
    'has spaces in it',
    '"quoted"',
    '<script>alert(1)</script>',
    'a,b',
    [
      ['x-request-id', 'first-id'],
      ['x-request-id', 'second-id'],
    ],
  ];
  for (const value of hostile) {
    const headers = typeof value === 'string' ? [['x-request-id', value] as [string, string]] : value;
    const response = await get('/healthz', headers);
    const returned = response.headers.get('x-request-id') ?? '';
    assert.match(returned, uuidPattern, `${JSON.stringify(value)} was replaced`);
    await accessLine(returned);
    for (const [, sent] of headers) assert.ok(!server.output().includes(sent), `${sent} is not in the log`);
  }
});

test('every response carries an id: no header, errors, unknown routes, the watch stream', async () => {
  const ids = new Set<string>();
  for (const [path, status] of [
    ['/healthz', 200],
    ['/v1/skus', 401],
    ['/no/such/route', 404],
    // Bad percent-encoding: the router refuses it before any route or hook runs.
    ['/v1/skus/%E0%A4%A', 400],
  ] as const) {
    const response = await get(path);
    assert.equal(response.status, status);
    const id = response.headers.get('x-request-id') ?? '';
    assert.match(id, uuidPattern, path);
    ids.add(id);
    const line = await accessLine(id);
    assert.equal(line.statusCode, status);
  }
  assert.equal(ids.size, 4, 'each request gets its own id');
  // The watch writes its own response head (it is a raw stream); the id is in it too.
  await createSku(server.url, 'request-id-sku', { initialStock: 1 });
  const controller = new AbortController();
  const stream = await fetch(`${server.url}/v1/watch?sku=request-id-sku`, {
    headers: { authorization: `Bearer ${clientKey}`, 'x-request-id': 'watch-1' },
    signal: controller.signal,
  });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.equal(stream.headers.get('x-request-id'), 'watch-1');
  controller.abort();
});

test('every log line has an ISO time and a level name, and every request line its id', async () => {
  const lines = logLines();
  assert.ok(lines.length > 5);
  for (const line of lines) {
    assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, JSON.stringify(line));
    assert.ok(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(String(line.level)), JSON.stringify(line));
    if (line.url !== undefined) assert.ok(line.requestId, `a request's line carries its id: ${JSON.stringify(line)}`);
  }
});
