// The internal route instances forward writes on, as a stranger meets it:
// it takes the cluster key and nothing else (no key, an API key, a wrong
// key are all 401), validates its body as strictly as the public routes
// (bad shapes are 400, a body over the limit 413), applies a forwarded
// reservation once and replays it for the same caller's scope and key, and
// never writes the cluster key to the log, not even at debug level. On the
// embedded store there is no such route.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clusterForwardBodyBytesMax, clusterForwardOpsMax } from '../../src/constants.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { call } from '../support/load.ts';
import {
  adminKey,
  clientKey,
  clusterKey,
  createSku,
  etcdServeArgs,
  killIfRunning,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';
import { useTestService } from '../support/service-fixture.ts';

const path = '/internal/v1/operations';
const wrongKey = `${clusterKey.slice(0, -1)}X`;

let cluster: EtcdCluster;
let server: ServerProcess | undefined;
const data = tempDataDir('hotstock-internal');
const sku = `internal-${process.pid}`;
const embedded = useTestService();

before(async () => {
  cluster = await startEtcdCluster();
  server = await spawnServer(
    data.dir,
    etcdServeArgs(cluster.endpoints, `internal-${process.pid}/`, ['--log-level', 'debug']),
  );
  await createSku(server.url, sku, { initialStock: 100 });
});

after(async () => {
  await killIfRunning(server);
  await cluster?.stop();
  data.remove();
});

async function post(body: unknown, key: string | null = clusterKey, base = server!.url) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const answer = (await response.json()) as ForwardedAnswer;
  return { status: response.status, type: response.headers.get('content-type'), body: answer };
}

/** What the route answers: results, or a problem. */
interface ForwardedAnswer {
  code?: string;
  results: { ok: boolean; status: number; replayed: boolean; resource: { order: { id: string } } }[];
}

const reservation = (key: string, scope = '0123456789abcdef') => ({
  kind: 'reserve',
  reservation: { sku, qty: 1, userId: 'u1' },
  intent: { scope, key },
});

describe('the internal route', () => {
  it('takes the cluster key and nothing else', async () => {
    for (const key of [null, clientKey, adminKey, wrongKey, clusterKey.slice(1)]) {
      const answer = await post({ ops: [reservation('auth-probe')] }, key);
      assert.equal(answer.status, 401, `key ${key === null ? 'none' : 'given'}`);
      assert.equal(answer.body.code, 'unauthorized');
      assert.match(answer.type ?? '', /application\/problem\+json/);
    }
  });

  it('refuses what hotstock does not send, changing nothing', async () => {
    const bad: unknown[] = [
      {},
      { ops: [] },
      { ops: Array.from({ length: clusterForwardOpsMax + 1 }, (_, i) => reservation(`many-${i}`)) },
      { ops: [{ ...reservation('kind'), kind: 'explode' }] },
      { ops: [{ ...reservation('extra'), extra: 1 }] },
      { ops: [{ kind: 'reserve', reservation: { sku, qty: '1', userId: 'u1' } }] },
      { ops: [reservation('scope', 'not-a-scope')] },
      { ops: [{ kind: 'transition', sku, orderId: 'o', action: 'expire' }] },
      { ops: [{ kind: 'adjust', sku, adjustment: { delta: 0, reason: 'none' } }] },
      { ops: [{ kind: 'upsert', sku, upsert: { product: 'p', size: 'M', color: 'red', priceCents: -1 } }] },
      { ops: [{ kind: 'transition', sku, orderId: 'o', action: 'pay', ifMatch: ['7'] }] },
    ];
    for (const body of bad) {
      const answer = await post(body);
      assert.equal(answer.status, 400, JSON.stringify(body).slice(0, 200));
      assert.equal(answer.body.code, 'validation_failed');
    }
    const huge = await post(`{"ops":[${JSON.stringify(reservation('x'.repeat(clusterForwardBodyBytesMax)))}]}`);
    assert.equal(huge.status, 413);
    const sold = await call<{ reserved: number }>(server!.url, 'GET', `/v1/skus/${sku}`);
    assert.equal(sold.body.reserved, 0, 'nothing was reserved');
  });

  it('applies a forwarded reservation once and replays it for the same scope and key', async () => {
    const first = await post({ ops: [reservation('once')] });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const created = first.body.results[0]!;
    assert.deepEqual([created.ok, created.status, created.replayed], [true, 201, false]);
    const again = await post({ ops: [reservation('once'), reservation('once', 'fedcba9876543210')] });
    const [replayed, otherScope] = again.body.results as [ForwardedAnswer['results'][0], ForwardedAnswer['results'][0]];
    assert.deepEqual(
      [replayed.status, replayed.replayed, replayed.resource.order.id],
      [201, true, created.resource.order.id],
    );
    assert.notEqual(otherScope.resource.order.id, created.resource.order.id, 'another caller, another order');
  });

  it('never writes the cluster key to the log', () => {
    const output = server!.output();
    assert.match(output, /"url":"\/internal\/v1\/operations"/, 'the debug access log saw the route');
    assert.ok(!output.includes(clusterKey) && !output.includes(wrongKey), 'a cluster key appears in the log');
  });

  it('does not exist on the embedded store', async () => {
    const answer = await post({ ops: [reservation('lmdb')] }, clusterKey, embedded().url);
    assert.equal(answer.status, 404);
  });
});
