// Helpers for the tests of the cutover between stores: the flags of a
// service with a mirror, moves started and followed to their end through
// the admin API, waiting for the mirror to catch up, shadow-read counts from
// /metrics, and `hotstock reconcile` / `hotstock check` on both stores.
import assert from 'node:assert/strict';
import type { MoveView } from '../../src/cutover/moves.ts';
import { type Answer, call, sleep } from './load.ts';
import { adminKey, type CommandResult, etcdArgs, runCheck, runHotstock } from './service.ts';

/** A move or a catch-up that has not finished by then is reported as stuck (they take seconds here). */
export const cutoverWaitMsMax = 90_000;
const pollMs = 100;

/** `--mirror etcd` with the etcd flags, for a service on LMDB that mirrors to etcd under its own prefix. */
export function mirrorArgs(endpoints: readonly string[], prefix: string): string[] {
  return ['--mirror', 'etcd', '--etcd-endpoints', endpoints.join(','), '--etcd-prefix', prefix];
}

interface RoutingTable {
  mirrors: { from: string; to: string; phase: string; lagRevisions: number; lagSeconds: number; breaker: string }[];
  skus: Record<string, number>;
  seeded: boolean;
  items: { sku: string; store: string }[];
  nextCursor: string | null;
}

export async function routing(base: string): Promise<RoutingTable> {
  const answer: Answer<RoutingTable> = await call(base, 'GET', '/v1/admin/routing?limit=500', { key: adminKey });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** Starts a move (202) and returns it. */
export async function startMove(base: string, body: Record<string, unknown>): Promise<MoveView> {
  const answer: Answer<MoveView> = await call(base, 'POST', '/v1/admin/routing/moves', { key: adminKey, body });
  assert.equal(answer.status, 202, JSON.stringify(answer.body));
  return answer.body;
}

/** Polls a move until it is done or failed. */
export async function moveEnded(base: string, id: string, waitMsMax = cutoverWaitMsMax): Promise<MoveView> {
  const deadline = Date.now() + waitMsMax;
  for (;;) {
    const answer: Answer<MoveView> = await call(base, 'GET', `/v1/admin/routing/moves/${id}`, { key: adminKey });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    if (answer.body.state === 'done' || answer.body.state === 'failed') return answer.body;
    assert.ok(Date.now() < deadline, `move ${id} still ${answer.body.state} after ${waitMsMax} ms`);
    await sleep(pollMs);
  }
}

/** Every move the service keeps. */
export async function moves(base: string): Promise<MoveView[]> {
  const answer: Answer<{ items: MoveView[] }> = await call(base, 'GET', '/v1/admin/routing/moves', {
    key: adminKey,
  });
  assert.equal(answer.status, 200);
  return answer.body.items;
}

/** Waits until the initial copy is in and every mirror direction has applied everything recorded. */
export async function caughtUp(base: string, waitMsMax = cutoverWaitMsMax): Promise<void> {
  const deadline = Date.now() + waitMsMax;
  for (;;) {
    const table = await routing(base);
    if (table.seeded && table.mirrors.every((mirror) => mirror.phase === 'running' && mirror.lagRevisions === 0)) {
      return;
    }
    assert.ok(
      Date.now() < deadline,
      `the mirror did not catch up within ${waitMsMax} ms: ${JSON.stringify(table.mirrors)}`,
    );
    await sleep(pollMs);
  }
}

/** One sample of /metrics (0 when absent). */
export async function metric(base: string, name: string, labels = ''): Promise<number> {
  const answer: Answer<string> = await call(base, 'GET', '/metrics');
  const line = answer.body.split('\n').find((candidate) => candidate.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

export async function shadowCounts(base: string): Promise<Record<'match' | 'mismatch' | 'error' | 'skipped', number>> {
  const read = (result: string) => metric(base, 'hotstock_shadow_reads_total', `{result="${result}"}`);
  return {
    match: await read('match'),
    mismatch: await read('mismatch'),
    error: await read('error'),
    skipped: await read('skipped'),
  };
}

/** `hotstock reconcile` on a stopped (or running) service's two stores. */
export function runReconcile(dataDir: string, endpoints: readonly string[], prefix: string): Promise<CommandResult> {
  return runHotstock(['reconcile', '--data-dir', dataDir, ...mirrorArgs(endpoints, prefix)]);
}

/** `hotstock check` must find the ledger exact on the LMDB store and on the etcd one. */
export async function assertBothLedgersExact(dataDir: string, endpoints: readonly string[], prefix: string) {
  const lmdb = await runCheck(dataDir);
  assert.equal(lmdb.code, 0, `hotstock check (lmdb): ${lmdb.stdout}${lmdb.stderr}`);
  assert.match(lmdb.stdout, /ledger exact/);
  const etcd = await runCheck(dataDir, etcdArgs(endpoints, prefix));
  assert.equal(etcd.code, 0, `hotstock check (etcd): ${etcd.stdout}${etcd.stderr}`);
  assert.match(etcd.stdout, /ledger exact/);
  return { lmdb: lmdb.stdout.trim(), etcd: etcd.stdout.trim() };
}

/** `hotstock reconcile` must find no difference. */
export async function assertReconciled(dataDir: string, endpoints: readonly string[], prefix: string): Promise<string> {
  const result = await runReconcile(dataDir, endpoints, prefix);
  assert.equal(result.code, 0, `hotstock reconcile: ${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /no differences/);
  return result.stdout.trim();
}
