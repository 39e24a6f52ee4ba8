// The shipped Grafana dashboard, as Grafana would import it: a datasource
// template variable every panel and query goes through, and every panel with
// a unit, a description, and rates over $__rate_interval (Grafana's window
// that always holds enough scrapes). test/ops/prometheus.test.ts evaluates
// every expression against a real Prometheus.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shippedDashboard } from '../support/prometheus.ts';

const dashboard = shippedDashboard();
const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
/** Grafana's reference to the datasource variable, as the dashboard JSON spells it. */
const datasourceVariable = ['$', '{datasource}'].join('');

test('the dashboard picks its Prometheus through a datasource variable', () => {
  const variable = dashboard.templating.list.find((candidate) => candidate.name === 'datasource');
  assert.equal(variable?.type, 'datasource');
  assert.equal(variable?.query, 'prometheus');
  for (const panel of panels) {
    const sources = [panel, ...(panel.targets ?? [])].map(
      (item) => (item as { datasource?: { uid?: string } }).datasource?.uid,
    );
    assert.deepEqual(new Set(sources), new Set([datasourceVariable]), `${panel.title}: every query uses $datasource`);
  }
});

test('every panel has a unit, a description and at least one query', () => {
  assert.ok(panels.length >= 30, `${panels.length} panels`);
  for (const panel of panels) {
    assert.ok(panel.fieldConfig?.defaults?.unit, `${panel.title}: unit`);
    assert.ok((panel.description ?? '').length >= 20, `${panel.title}: description`);
    assert.ok((panel.targets ?? []).length > 0, `${panel.title}: queries`);
  }
  const titles = panels.map((panel) => panel.title);
  assert.equal(new Set(titles).size, titles.length, 'panel titles are unique');
});

test('every rate, irate and increase is taken over $__rate_interval', () => {
  let ranges = 0;
  for (const panel of panels) {
    for (const { expr } of panel.targets ?? []) {
      for (const match of expr.matchAll(/\b(rate|irate|increase)\(([^[]*)\[([^\]]*)\]/g)) {
        ranges++;
        assert.equal(match[3], '$__rate_interval', `${panel.title}: ${match[0]}`);
      }
      assert.doesNotMatch(expr, /\[\d+[smhd]\]/, `${panel.title}: no fixed range in ${expr}`);
    }
  }
  assert.ok(ranges >= 30, `${ranges} ranges checked`);
});

test('the rows cover what an operator looks for', () => {
  const rows = dashboard.panels.filter((panel) => panel.type === 'row').map((panel) => panel.title);
  assert.deepEqual(rows, [
    'Traffic and errors (RED)',
    'Reservations',
    'Latency',
    'Commits and batches',
    'Queue and shedding',
    'Runtime',
    'Storage backend',
    'Cluster',
    'etcd',
    'Mirror and cutover',
    'Watchers',
    'Stock',
  ]);
  const exprs = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)).join('\n');
  for (const metric of [
    'etcd_disk_wal_fsync_duration_seconds_bucket',
    'etcd_disk_backend_commit_duration_seconds_bucket',
    'etcd_network_peer_round_trip_time_seconds_bucket',
    'etcd_server_leader_changes_seen_total',
    'etcd_server_proposals_failed_total',
    'etcd_mvcc_db_total_size_in_bytes',
    'etcd_server_quota_backend_bytes',
    'hotstock_backend_breaker_state',
    'hotstock_cluster_shards_owned',
    'hotstock_cluster_forwarded_operations_total',
    'hotstock_cluster_fence_refusals_total',
    'hotstock_sku_stock_units',
    'nodejs_gc_duration_seconds_sum',
    'nodejs_eventloop_lag_p99_seconds',
    'hotstock_mirror_lag_revisions',
    'hotstock_mirror_lag_seconds',
    'hotstock_mirror_applied_total',
    'hotstock_mirror_outbox_entries',
    'hotstock_cutover_moves',
    'hotstock_shadow_reads_total',
  ]) {
    assert.ok(exprs.includes(metric), `a panel shows ${metric}`);
  }
});
