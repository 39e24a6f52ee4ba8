// /metrics as dashboards and alerts rely on it: every family under its fixed
// name and type (`_total` on counters only), Node.js metrics under their
// standard names, build info, the batch route under the path clients call,
// replays counted apart from reservations, error responses by code, and stock
// gauges for a bounded set of the most recently changed SKUs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import packageJson from '../../package.json' with { type: 'json' };
import { metricsStockSkusMax } from '../../src/constants.ts';
import { nextSkuId } from '../support/api-helpers.ts';
import { api, createSku, reserve } from '../support/service.ts';
import { useTestService } from '../support/service-fixture.ts';

const service = useTestService();

/** hotstock's own families: renaming one breaks dashboards and alerts, so this list only grows. */
const hotstockFamilies: Record<string, string> = {
  hotstock_build_info: 'gauge',
  hotstock_http_request_duration_seconds: 'histogram',
  hotstock_http_problems_total: 'counter',
  hotstock_requests_shed_total: 'counter',
  hotstock_requests_rate_limited_total: 'counter',
  hotstock_reservations_total: 'counter',
  hotstock_idempotent_replays_total: 'counter',
  hotstock_order_transitions_total: 'counter',
  hotstock_reservations_expired_total: 'counter',
  hotstock_store_commit_duration_seconds: 'histogram',
  hotstock_batch_operations: 'histogram',
  hotstock_store_failures_total: 'counter',
  hotstock_store_writes_total: 'counter',
  hotstock_store_checks_total: 'counter',
  hotstock_change_feed_gaps_total: 'counter',
  hotstock_engine_queue_depth: 'gauge',
  hotstock_event_loop_shedding: 'gauge',
  hotstock_backend_breaker_state: 'gauge',
  hotstock_backend_breaker_opened_total: 'counter',
  hotstock_sku_stock_units: 'gauge',
  hotstock_watch_subscribers: 'gauge',
  hotstock_watch_subscribers_limit: 'gauge',
  hotstock_watch_buffered_bytes: 'gauge',
  hotstock_watch_events_sent_total: 'counter',
  hotstock_watch_events_coalesced_total: 'counter',
  hotstock_watch_subscribers_dropped_total: 'counter',
  hotstock_lmdb_file_size_bytes: 'gauge',
  hotstock_lmdb_map_size_bytes: 'gauge',
  hotstock_data_filesystem_avail_bytes: 'gauge',
  hotstock_data_filesystem_size_bytes: 'gauge',
  hotstock_shadow_reads_total: 'counter',
  hotstock_mirror_breaker_state: 'gauge',
  hotstock_mirror_lag_revisions: 'gauge',
  hotstock_mirror_lag_seconds: 'gauge',
  hotstock_mirror_applied_total: 'counter',
  hotstock_mirror_outbox_entries: 'gauge',
  hotstock_mirror_outbox_entries_limit: 'gauge',
  hotstock_cutover_moves: 'gauge',
  hotstock_cutover_skus: 'gauge',
  hotstock_cluster_forwarded_operations_total: 'counter',
  hotstock_cluster_fence_refusals_total: 'counter',
  hotstock_cluster_shard_handovers_total: 'counter',
  hotstock_cluster_members: 'gauge',
  hotstock_cluster_shards_owned: 'gauge',
};

/** The standard Node.js metrics stock dashboards query, under their standard names. */
const standardFamilies = [
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_open_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_used_bytes',
  'nodejs_active_handles',
  'nodejs_gc_duration_seconds',
  'nodejs_version_info',
];

async function scrape(): Promise<string> {
  const response = await api<string>(service().url, 'GET', '/metrics', { key: null });
  assert.equal(response.status, 200);
  return response.body;
}

function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => [match[1]!, match[2]!]));
}

/** The value of one sample, or undefined if absent. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('every family has its fixed name and type, and only counters end in _total', async () => {
  const found = families(await scrape());
  for (const [name, type] of found) {
    if (name.endsWith('_total')) assert.equal(type, 'counter', `${name} ends in _total, so it must be a counter`);
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
  }
  const own = Object.fromEntries([...found].filter(([name]) => name.startsWith('hotstock_')));
  assert.deepEqual(own, hotstockFamilies);
  for (const name of standardFamilies) assert.ok(found.has(name), `${name} under its standard name`);
  assert.deepEqual(
    [...found.keys()].filter((name) => /^hotstock_(process|nodejs)_/.test(name)),
    [],
    'no renamed standard metrics',
  );
});

test('build info names the version and the runtime', async () => {
  const labels = `{version="${packageJson.version}",node_version="${process.version}"}`;
  assert.equal(sample(await scrape(), 'hotstock_build_info', labels), 1);
});

test('the batch route is labelled as clients call it, and errors are counted by code', async () => {
  const sku = nextSkuId('names-batch');
  await createSku(service().url, sku, { initialStock: 1 });
  const batch = await api(service().url, 'POST', '/v1/orders:batch', {
    body: { items: [{ sku, qty: 1, userId: 'b1', idempotencyKey: `${sku}-1` }] },
  });
  assert.equal(batch.status, 200);
  assert.equal((await reserve(service().url, { sku, qty: 1, userId: 'b2' })).status, 409);
  const text = await scrape();
  assert.ok(
    (sample(
      text,
      'hotstock_http_request_duration_seconds_count',
      '{route="/v1/orders:batch",method="POST",status="200"}',
    ) ?? 0) >= 1,
  );
  assert.doesNotMatch(text, /::/, 'no route label keeps the router escape');
  assert.ok(
    (sample(text, 'hotstock_http_problems_total', '{route="/v1/orders",method="POST",status="409",code="sold_out"}') ??
      0) >= 1,
  );
});

test('a replay counts as a replay, not as another reservation', async () => {
  const sku = nextSkuId('names-replay');
  await createSku(service().url, sku, { initialStock: 5 });
  const before = await scrape();
  assert.equal((await reserve(service().url, { sku, qty: 1, userId: 'r1' }, `${sku}-key`)).status, 201);
  const replay = await reserve(service().url, { sku, qty: 1, userId: 'r1' }, `${sku}-key`);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  const text = await scrape();
  const delta = (name: string, labels: string) =>
    (sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
  assert.equal(delta('hotstock_reservations_total', '{result="created"}'), 1);
  assert.equal(delta('hotstock_idempotent_replays_total', '{operation="reserve"}'), 1);
  assert.doesNotMatch(text, /result="replayed"/);
});

test(`stock gauges cover the ${metricsStockSkusMax} most recently changed SKUs, no more`, async () => {
  const skus: string[] = [];
  for (let i = 0; i < metricsStockSkusMax + 5; i++) {
    skus.push(nextSkuId('names-stock'));
    await createSku(service().url, skus.at(-1)!, { initialStock: 10 });
  }
  const first = skus[0]!;
  // The first SKU left the set long ago; changing it brings it back as the most recent one.
  assert.equal((await reserve(service().url, { sku: first, qty: 3, userId: 's1' })).status, 201);
  const text = await scrape();
  const shown = new Set(
    [...text.matchAll(/^hotstock_sku_stock_units\{sku="([^"]+)",state="available"\}/gm)].map((m) => m[1]),
  );
  assert.equal(shown.size, metricsStockSkusMax);
  assert.ok(shown.has(first), 'the SKU changed last is shown');
  // Before the reservation the set held the last 50 created; the reservation pushed out the oldest of them.
  assert.ok(!shown.has(skus[5]!), 'the SKU changed longest ago left');
  assert.ok(shown.has(skus[6]!), 'the next one stays');
  assert.equal(sample(text, 'hotstock_sku_stock_units', `{sku="${first}",state="available"}`), 7);
  assert.equal(sample(text, 'hotstock_sku_stock_units', `{sku="${first}",state="reserved"}`), 3);
  assert.equal(sample(text, 'hotstock_sku_stock_units', `{sku="${first}",state="sold"}`), 0);
});
