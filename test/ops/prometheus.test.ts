// A real Prometheus, configured by ops/prometheus/prometheus.yml (targets
// replaced, intervals at 1 s), scrapes two real `hotstock serve` processes
// (one on LMDB with an etcd mirror, one on a three-member etcd cluster) and
// that etcd cluster,
// while traffic flows. Then every PromQL expression of the dashboard and of
// the rules goes through Prometheus' HTTP API: each must be accepted, every
// rule must evaluate cleanly, and the core panels must return data.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { sleep } from '../support/load.ts';
import {
  type DashboardPanel,
  type PrometheusServer,
  type QueryResult,
  shippedDashboard,
  shippedRules,
  startPrometheus,
} from '../support/prometheus.ts';
import {
  adminKey,
  api,
  createSku,
  etcdServeArgs,
  killIfRunning,
  reserve,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

/** Longest the test waits for Prometheus to have what the core panels need. */
const dataWaitMs = 90_000;
const pollMs = 1_000;
/** Grafana's $__rate_interval is 4 scrape intervals or more; at 1 s scrapes, 15 s leaves room to spare. */
const testRateInterval = '15s';
/** Panels that must show data once traffic has flowed (the others may legitimately be empty, e.g. no 5xx). */
const corePanels = [
  'Requests by route',
  'Errors by route and code',
  'Request latency P99 by route',
  'Reservation outcomes',
  'Idempotent replays',
  'Availability SLO: error ratio',
  'Latency SLO: share slower than 250 ms',
  'Reservation latency quantiles',
  'Commit latency',
  'Batch size',
  'Queue depth',
  'Event-loop lag',
  'CPU',
  'Memory',
  'Build',
  'Breaker state',
  'LMDB map and disk',
  'WAL fsync P99',
  'Backend commit P99',
  'Peer round trip P95',
  'Leader and leader changes',
  'DB size against quota',
  'Watchers',
  'Available stock, hottest SKUs',
  'Mirror lag (commits)',
  'Mirror lag (seconds)',
  'Mirror applied',
  'Outbox entries',
  'SKUs by store',
  'Moves by state',
  'Shadow reads',
  'Mirror breaker',
];

let etcd: EtcdCluster;
const servers: ServerProcess[] = [];
const dataDirs: { remove: () => void }[] = [];
let prometheus: PrometheusServer;
let trafficRunning = true;
let traffic: Promise<void>;

/** Reservations on both servers until told to stop: some created, some sold out, some replayed. */
async function driveTraffic(urls: string[]): Promise<void> {
  for (let round = 0; trafficRunning; round++) {
    await Promise.all(
      urls.map(async (url) => {
        await reserve(url, { sku: 'prom-hot', qty: 1, userId: `u${round % 50}` }, `prom-${round}`);
        await reserve(url, { sku: 'prom-hot', qty: 1, userId: `u${round % 50}` }, `prom-${round}`);
        await reserve(url, { sku: 'prom-gone', qty: 1, userId: 'late' });
        await api(url, 'GET', '/v1/skus/prom-hot', { headers: { 'x-canary': 'shadow' } });
        await api(url, 'POST', '/v1/orders:batch', {
          body: { items: [{ sku: 'prom-hot', qty: 1, userId: `b${round}`, idempotencyKey: `prom-b-${round}` }] },
        });
      }),
    );
    await sleep(50);
  }
}

before(async () => {
  etcd = await startEtcdCluster({ size: 3 });
  const mirror = ['--mirror', 'etcd', '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', 'prom-mirror/'];
  for (const extra of [mirror, etcdServeArgs(etcd.endpoints, 'prom-test/')]) {
    const dir = tempDataDir('hotstock-prom');
    dataDirs.push(dir);
    servers.push(await spawnServer(dir.dir, extra));
  }
  const urls = servers.map((server) => server.url);
  for (const url of urls) {
    await createSku(url, 'prom-hot', { initialStock: 1_000_000 });
    await createSku(url, 'prom-gone', { initialStock: 1 });
    assert.equal((await reserve(url, { sku: 'prom-gone', qty: 1, userId: 'first' })).status, 201);
    assert.equal((await api(url, 'GET', '/v1/skus/prom-hot', { key: adminKey })).status, 200);
  }
  prometheus = await startPrometheus({
    hotstock: urls.map((url) => new URL(url).host),
    etcd: etcd.endpoints.map((endpoint) => new URL(endpoint).host),
  });
  traffic = driveTraffic(urls);
});

after(async () => {
  trafficRunning = false;
  await traffic?.catch(() => {});
  await prometheus?.stop();
  for (const server of servers) await killIfRunning(server);
  for (const dir of dataDirs) dir.remove();
  await etcd?.stop();
});

/** The expression as Grafana would send it, with the dashboard's variables filled in. */
function filled(expr: string): string {
  const text = expr
    .replaceAll('$__rate_interval', testRateInterval)
    .replaceAll('$etcd_instance', '.*')
    .replaceAll('$instance', '.*');
  assert.doesNotMatch(text, /\$/, `every variable of ${expr} is filled`);
  return text;
}

function hasFiniteValue(result: QueryResult): boolean {
  return (result.data?.result ?? []).some((sample) => Number.isFinite(Number(sample.value[1])));
}

/** Core panels whose every query has no finite value yet. */
async function corePanelsWithoutData(panels: DashboardPanel[]): Promise<string[]> {
  const missing: string[] = [];
  for (const panel of panels.filter((candidate) => corePanels.includes(candidate.title))) {
    for (const target of panel.targets ?? []) {
      if (!hasFiniteValue(await prometheus.query(filled(target.expr)))) missing.push(`${panel.title} ${target.refId}`);
    }
  }
  return missing;
}

test('Prometheus scrapes both hotstock instances and every etcd member', async () => {
  const deadline = Date.now() + dataWaitMs;
  let up: QueryResult;
  do {
    up = await prometheus.query('up == 1');
    if ((up.data?.result.length ?? 0) === 5) break;
    await sleep(pollMs);
  } while (Date.now() < deadline);
  const jobs = (up.data?.result ?? []).map((sample) => sample.metric.job).sort();
  assert.deepEqual(jobs, ['etcd', 'etcd', 'etcd', 'hotstock', 'hotstock']);
  const builds = await prometheus.query('hotstock_build_info');
  assert.equal(builds.data?.result.length, 2, 'hotstock_build_info from each instance');
});

test('every dashboard expression is accepted and the core panels return data after traffic', async () => {
  const panels = shippedDashboard().panels.filter((panel) => panel.type !== 'row');
  for (const title of corePanels)
    assert.ok(
      panels.some((panel) => panel.title === title),
      `panel ${title}`,
    );
  const deadline = Date.now() + dataWaitMs;
  let missing = await corePanelsWithoutData(panels);
  while (missing.length > 0 && Date.now() < deadline) {
    await sleep(pollMs);
    missing = await corePanelsWithoutData(panels);
  }
  assert.deepEqual(missing, [], 'core panels with data');
  let evaluated = 0;
  for (const panel of panels) {
    for (const target of panel.targets ?? []) {
      const result = await prometheus.query(filled(target.expr));
      assert.equal(result.status, 'success', `${panel.title} ${target.refId}: ${result.error}`);
      evaluated++;
    }
  }
  console.log(`# ${evaluated} dashboard expressions accepted; ${corePanels.length} core panels have data`);
});

test('every rule expression is accepted and every rule evaluates cleanly in Prometheus', async () => {
  const rules = shippedRules();
  for (const rule of rules) {
    const result = await prometheus.query(rule.expr);
    assert.equal(result.status, 'success', `${'alert' in rule ? rule.alert : rule.record}: ${result.error}`);
  }
  const loaded = await prometheus.get<{
    data: { groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] };
  }>('/api/v1/rules');
  const evaluatedRules = loaded.data.groups.flatMap((group) => group.rules);
  assert.equal(evaluatedRules.length, rules.length, 'Prometheus loaded every shipped rule');
  for (const rule of evaluatedRules) {
    assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
    assert.notEqual(rule.lastEvaluation, '0001-01-01T00:00:00Z', `${rule.name} was evaluated`);
  }
  const availability = await prometheus.query('hotstock:reservation_errors:ratio_rate5m');
  assert.ok(hasFiniteValue(availability), 'the availability SLI is recorded');
  const firing = await prometheus.get<{ data: { alerts: { labels: { alertname: string }; state: string }[] } }>(
    '/api/v1/alerts',
  );
  const names = firing.data.alerts.map((alert) => `${alert.labels.alertname} (${alert.state})`);
  console.log(`# ${evaluatedRules.length} rules evaluated; alerts pending or firing: ${names.join(', ') || 'none'}`);
});
