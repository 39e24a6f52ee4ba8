// Quotas: a token bucket per API key and a bound on reservation attempts per
// user and SKU. Past either: 429 rate_limited with Retry-After and the IETF
// RateLimit-Policy / RateLimit fields; the refused request changes nothing;
// another key, user or SKU is unaffected; the metric counts by reason.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { SkuView } from '../../src/http/views.ts';
import { batch, freshSku, ledger } from '../support/api-helpers.ts';
import { assertProblem } from '../support/assertions.ts';
import {
  type ApiResponse,
  adminKey,
  api,
  clientKey,
  otherClientKey,
  reserve,
  tempDataDir,
  useTestService,
} from '../support/service.ts';

/** A client that should not meet its bucket; the bucket refills one a second, so this many requests outrun it. */
const requestsToExhaustMax = 60;
const roomyKey = 'test-client-key-roomy';

/** The SKU's ledger, read with the admin key (whose quota is off in the bucket test). */
async function adminLedger(base: string, sku: string) {
  const response = await api<SkuView>(base, 'GET', `/v1/skus/${sku}`, { key: adminKey });
  assert.equal(response.status, 200);
  return ledger(response.body);
}

async function revision(base: string): Promise<number> {
  const status = await api<{ store: { revision: number } }>(base, 'GET', '/v1/admin/status', { key: adminKey });
  return status.body.store.revision;
}

function sample(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function assertRateLimited(response: ApiResponse, reason: string, quota: number): void {
  const problem = assertProblem(response, 429, 'rate_limited');
  assert.equal(problem.reason, reason);
  const retryAfter = Number(response.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${response.headers.get('retry-after')}`);
  assert.match(response.headers.get('ratelimit-policy') ?? '', new RegExp(`^"${reason}";q=${quota};w=\\d+$`));
  assert.match(response.headers.get('ratelimit') ?? '', new RegExp(`^"${reason}";r=0;t=\\d+$`));
}

describe('a token bucket per API key', () => {
  const keysDir = tempDataDir('hotstock-keys');
  const keysFile = join(keysDir.dir, 'keys.json');
  writeFileSync(
    keysFile,
    JSON.stringify({
      admin: [{ key: adminKey, quotaRps: 0 }],
      client: [clientKey, otherClientKey, { key: roomyKey, quotaRps: 1000, quotaBurst: 1000 }],
    }),
  );
  const server = useTestService(
    {},
    { adminKeys: undefined, clientKeys: undefined, keysFile, quotaRps: 1, quotaBurst: 5, userAttemptsPerMinute: 0 },
  );
  after(() => keysDir.remove());

  test('a client over its bucket gets 429 with the headers, changes nothing; another client is unaffected', async () => {
    const sku = await freshSku(server.url, 'bucket', 100);
    const first = await api(server.url, 'GET', `/v1/skus/${sku}`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('ratelimit-policy'), '"client_quota";q=5;w=5');
    assert.match(first.headers.get('ratelimit') ?? '', /^"client_quota";r=4;t=\d+$/);
    let refused: ApiResponse | undefined;
    for (let i = 0; i < requestsToExhaustMax && refused === undefined; i++) {
      const response = await api(server.url, 'GET', `/v1/skus/${sku}`);
      if (response.status === 429) refused = response;
      else assert.equal(response.status, 200);
    }
    assert.ok(refused, `no 429 within ${requestsToExhaustMax} requests`);
    assertRateLimited(refused, 'client_quota', 5);

    const before = await revision(server.url);
    const ledgerBefore = await adminLedger(server.url, sku);
    const reservation = await reserve(server.url, { sku, qty: 1, userId: 'u1' });
    assert.equal(reservation.status, 429, 'still over its bucket');
    assert.equal(await revision(server.url), before, 'the refused reservation changed nothing');
    assert.deepEqual(await adminLedger(server.url, sku), ledgerBefore);

    const other = await reserve(server.url, { sku, qty: 1, userId: 'u2' }, undefined, otherClientKey);
    assert.equal(other.status, 201, 'another client has its own bucket');
    for (let i = 0; i < 20; i++) {
      const roomy = await api<SkuView>(server.url, 'GET', `/v1/skus/${sku}`, { key: roomyKey });
      assert.equal(roomy.status, 200, 'a key with its own quota in --keys-file');
      assert.equal(roomy.headers.get('ratelimit-policy'), '"client_quota";q=1000;w=1');
    }
    const noQuota = await api(server.url, 'GET', '/v1/admin/status', { key: adminKey });
    assert.equal(noQuota.headers.get('ratelimit-policy'), null, 'quotaRps 0: no quota, no fields');

    const metrics = await api<string>(server.url, 'GET', '/metrics', { key: null });
    assert.ok(sample(metrics.body, 'hotstock_requests_rate_limited_total', '{reason="client_quota"}') >= 2);
  });
});

describe('reservation attempts per user and SKU', () => {
  const server = useTestService({}, { userAttemptsPerMinute: 3 });

  test('a user over the bound gets 429 with nothing changed; other users and SKUs are unaffected', async () => {
    const sku = await freshSku(server.url, 'attempts', 100, 50);
    const other = await freshSku(server.url, 'attempts-other', 100, 50);
    for (let i = 0; i < 3; i++) {
      assert.equal((await reserve(server.url, { sku, qty: 1, userId: 'bot' })).status, 201);
    }
    const before = await revision(server.url);
    const ledgerBefore = await adminLedger(server.url, sku);
    const refused = await reserve(server.url, { sku, qty: 1, userId: 'bot' });
    assertRateLimited(refused, 'user_attempts', 3);
    assert.ok(Number(refused.headers.get('retry-after')) <= 20, 'one attempt comes back every 20 s');
    const item = await batch(server.url, [{ sku, qty: 1, userId: 'bot', idempotencyKey: 'bot-batch-1' }]);
    assert.equal(item.status, 200);
    assert.equal(item.body.results[0]?.status, 429, 'a batch item over the bound is refused alone');
    assert.equal(item.body.results[0]?.body.code, 'rate_limited');
    assert.equal(await revision(server.url), before, 'the refused attempts changed nothing');
    assert.deepEqual(await adminLedger(server.url, sku), ledgerBefore);
    assert.equal((await reserve(server.url, { sku, qty: 1, userId: 'human' })).status, 201, 'another user');
    assert.equal((await reserve(server.url, { sku: other, qty: 1, userId: 'bot' })).status, 201, 'another SKU');
    const metrics = await api<string>(server.url, 'GET', '/metrics', { key: null });
    assert.equal(sample(metrics.body, 'hotstock_requests_rate_limited_total', '{reason="user_attempts"}'), 2);
  });
});
