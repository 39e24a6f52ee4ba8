// GET /v1/admin/status: admin only; on the embedded store it names the store,
// its limits and revision, and has no breaker (etcd's status is checked in
// test/distributed/).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminKey, api, clientKey, startTestService, type TestService } from '../support/service.ts';

let service: TestService;
before(async () => {
  service = await startTestService();
});
after(async () => {
  await service.stop();
  service.remove();
});

describe('GET /v1/admin/status', () => {
  it('needs an admin key', async () => {
    assert.equal((await api(service.url, 'GET', '/v1/admin/status', { key: null })).status, 401);
    assert.equal((await api(service.url, 'GET', '/v1/admin/status', { key: clientKey })).status, 403);
  });

  it('names the store, its limits and revision; the embedded store has no breaker', async () => {
    const response = await api<{
      store: { kind: string; revision: number; limits: { commitChecksMax: number; commitWritesMax: number } };
      breaker: unknown;
    }>(service.url, 'GET', '/v1/admin/status', { key: adminKey });
    assert.equal(response.status, 200);
    assert.equal(response.body.store.kind, 'lmdb');
    assert.ok(Number.isSafeInteger(response.body.store.revision));
    assert.ok(response.body.store.limits.commitChecksMax > 0 && response.body.store.limits.commitWritesMax > 0);
    assert.equal(response.body.breaker, null);
  });
});
