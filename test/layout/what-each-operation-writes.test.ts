// The data layout (src/layout.ts) says which keys each operation writes; this
// proves it against what the engine actually commits to a real store, for
// every kind of operation, and that a reservation costs the store no more
// than the layout's bound: three writes and one version check besides the
// SKU record, which a batch writes once. It also proves the lint rule that
// keeps http/ away from the store and the layout is in force.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { checkLedger } from '../../src/check/ledger-check.ts';
import type { OrderRecord } from '../../src/domain/types.ts';
import { Engine, type EngineObserver } from '../../src/engine/engine.ts';
import type { OperationResult } from '../../src/engine/operations.ts';
import {
  ensureLayout,
  idempotencyId,
  type KeyWriter,
  keys,
  operationCosts,
  orderIndexEntries,
  writeOrderChange,
} from '../../src/layout.ts';
import type { CommitResult, VersionCheck, Write } from '../../src/store/contract.ts';
import { CountingStore } from '../../src/store/counting-store.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { tempDataDir } from '../support/service.ts';

/** A real store that keeps every commit it is sent. */
class RecordingStore extends CountingStore {
  readonly log: { checks: VersionCheck[]; writes: Write[] }[] = [];
  override commit(checks: readonly VersionCheck[], writes: readonly Write[]): Promise<CommitResult> {
    this.log.push({ checks: [...checks], writes: [...writes] });
    return super.commit(checks, writes);
  }
}

/** Collects what a layout function writes, to compare with a commit. */
class Collected implements KeyWriter {
  readonly writes: Write[] = [];
  put(key: string, value: unknown): void {
    this.writes.push({ type: 'put', key, value });
  }
  delete(key: string): void {
    this.writes.push({ type: 'delete', key });
  }
}

const quietObserver: EngineObserver = { batchCommitted() {}, operationDecided() {}, storeFailed() {} };
const data = tempDataDir('layout');
const store = new RecordingStore(new LmdbStore({ dataDir: data.dir }));
let clockMs = Date.now();
const ttlMs = 60_000;
const engine = new Engine(
  store,
  { reservationTtlMs: ttlMs, idempotencyTtlMs: 60_000, nowMs: () => clockMs },
  quietObserver,
);
const entry = { product: 'tee', size: 'M', color: 'red', priceCents: 900, maxPerUser: 3 };

before(async () => {
  assert.equal(await ensureLayout(store, { create: true }), 'ready');
  assert.ok((await engine.upsert('lim', { entry, initialStock: 1_000 }, {})).ok);
  assert.ok((await engine.upsert('free', { entry: { ...entry, maxPerUser: null }, initialStock: 100 }, {})).ok);
});

after(async () => {
  assert.deepEqual((await checkLedger(store)).violations, [], 'every operation left the ledger exact');
  await store.close();
  data.remove();
});

/** Runs `action` and returns the one commit it made. */
async function oneCommit(action: () => Promise<OperationResult>) {
  const before = store.log.length;
  const result = await action();
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(store.log.length, before + 1, 'exactly one commit');
  return { result, commit: store.log.at(-1)! };
}

function sorted(writes: readonly Write[]): Write[] {
  return [...writes].sort((a, b) => (a.key < b.key ? -1 : 1));
}

/** The commit wrote the SKU record and exactly `expected` besides; it checked the SKU and `checked` besides. */
function assertCommit(
  commit: { checks: VersionCheck[]; writes: Write[] },
  sku: string,
  expected: Write[],
  checked: string[],
): void {
  const skuWrite = commit.writes.find((write) => write.key === keys.sku(sku));
  assert.ok(skuWrite?.type === 'put', 'the SKU record is written');
  assert.deepEqual(
    sorted(commit.writes.filter((write) => write !== skuWrite)),
    sorted(expected),
    'what the layout says it writes',
  );
  assert.deepEqual(commit.checks.map((check) => check.key).sort(), [keys.sku(sku), ...checked].sort());
}

async function orderOf(result: OperationResult): Promise<OrderRecord> {
  assert.ok(result.ok && result.resource.kind === 'order');
  return result.resource.order;
}

describe('what each operation writes', () => {
  test('a reservation on a SKU with a per-user limit: the order and the two entries it implies; one check besides the SKU', async () => {
    const { result, commit } = await oneCommit(() =>
      engine.reserve('lim', { qty: 2, userId: 'ann' }, { scope: 'client-a', key: 'first' }),
    );
    const order = await orderOf(result);
    assert.equal(order.id, idempotencyId('client-a', 'first'), 'the order id is the idempotency id');
    const implied = new Collected();
    implied.put(keys.order(order.id), order);
    for (const indexEntry of orderIndexEntries(order)) implied.put(indexEntry.key, indexEntry.value);
    assertCommit(commit, 'lim', implied.writes, [keys.order(order.id)]);
    assert.deepEqual(
      commit.checks.find((check) => check.key === keys.order(order.id)),
      { key: keys.order(order.id), version: 0 },
      'the order id must be new',
    );
    assert.equal(implied.writes.length, operationCosts.reserve.writes);
    assert.equal(commit.checks.length - 1, operationCosts.reserve.checks);
  });

  test('a retried reservation replays from the order itself and writes nothing', async () => {
    const before = store.log.length;
    const replay = await engine.reserve('lim', { qty: 2, userId: 'ann' }, { scope: 'client-a', key: 'first' });
    assert.ok(replay.ok && replay.replayed);
    const reused = await engine.reserve('lim', { qty: 1, userId: 'ann' }, { scope: 'client-a', key: 'first' });
    assert.ok(!reused.ok && reused.code === 'idempotency_key_reused');
    assert.equal(store.log.length, before, 'no commit');
  });

  test('a batch of reservations writes the SKU record once: 3 writes and 1 check per reservation besides', async () => {
    const writesBefore = store.writes;
    const checksBefore = store.checks;
    const commitsBefore = store.commits;
    const count = 200;
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        engine.reserve('lim', { qty: 1, userId: `bulk-${i}` }, { scope: 'client-a', key: `bulk-${i}` }),
      ),
    );
    assert.ok(results.every((result) => result.ok));
    const commits = store.commits - commitsBefore;
    assert.ok(commits < count, `${count} reservations in ${commits} commits`);
    assert.equal(store.writes - writesBefore, commits + count * operationCosts.reserve.writes);
    assert.equal(store.checks - checksBefore, commits + count * operationCosts.reserve.checks);
  });

  test('pay, then cancel (a refund): the order, and its user entry only when its units change', async () => {
    const reserved = await orderOf(await engine.reserve('free', { qty: 1, userId: 'bob' }, { scope: 'c', key: 'pay' }));
    const paid = await oneCommit(() => engine.transition(reserved.id, 'pay', {}));
    const paidOrder = await orderOf(paid.result);
    const payWrites = new Collected();
    writeOrderChange(payWrites, reserved, paidOrder);
    assert.deepEqual(
      payWrites.writes.map((write) => write.key),
      [keys.order(reserved.id)],
      'units still held',
    );
    // The order was read to route the request; its version is checked at commit.
    assertCommit(paid.commit, 'free', payWrites.writes, [keys.order(reserved.id)]);

    const refunded = await oneCommit(() => engine.transition(reserved.id, 'cancel', {}));
    const refundWrites = new Collected();
    writeOrderChange(refundWrites, paidOrder, await orderOf(refunded.result));
    assert.equal(refundWrites.writes.length, operationCosts.transition.writes, 'the order and its user entry');
    assertCommit(refunded.commit, 'free', refundWrites.writes, [keys.order(reserved.id)]);
    assert.equal((refundWrites.writes[1] as { value: { units: number } }).value.units, 0, 'no units held');
  });

  test('expiry: the order and its user entry, no version check besides the SKU', async () => {
    const reserved = await orderOf(await engine.reserve('lim', { qty: 1, userId: 'cy' }, { scope: 'c', key: 'exp' }));
    clockMs += ttlMs + 1;
    const expired = await oneCommit(() => engine.submit('lim', { kind: 'expire', orderId: reserved.id }));
    const expected = new Collected();
    writeOrderChange(expected, reserved, await orderOf(expired.result));
    assertCommit(expired.commit, 'lim', expected.writes, []);
  });

  test('an adjustment with a key: its audit entry, the idempotency record and its expiry entry', async () => {
    const { commit } = await oneCommit(() =>
      engine.adjust(
        'free',
        { delta: 5, reason: 'restock' },
        { idempotency: { scope: 'adm', key: 'r1', fingerprint: 'f' } },
      ),
    );
    const id = idempotencyId('adm', 'r1');
    const others = commit.writes.filter((write) => write.key !== keys.sku('free'));
    assert.equal(others.length, operationCosts.adjust.writes + operationCosts.idempotency.writes - 1);
    assert.ok(others.some((write) => write.key.startsWith('adjustment/free\u0000')));
    assert.ok(others.some((write) => write.key === keys.idempotency(id)));
    assert.ok(others.some((write) => write.key.startsWith('idem-expiry/') && write.key.endsWith(id)));
    assert.deepEqual(commit.checks.map((check) => check.key).sort(), [keys.idempotency(id), keys.sku('free')].sort());
  });

  test('an update that moves a SKU in the catalog: the old index entry deleted, the new one put', async () => {
    const { result, commit } = await oneCommit(() =>
      engine.upsert('free', { entry: { ...entry, maxPerUser: null, color: 'blue' } }, {}),
    );
    assert.ok(result.ok && result.resource.kind === 'sku');
    const moved: Write[] = [
      { type: 'delete', key: keys.catalog({ ...entry, sku: 'free' }) },
      { type: 'put', key: keys.catalog({ ...entry, color: 'blue', sku: 'free' }), value: '' },
    ];
    assertCommit(commit, 'free', moved, []);
    assert.equal(moved.length, operationCosts.upsert.writes);
  });
});

describe('layers', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));

  test('the lint rule refuses an import of the store or the layout from http/', async () => {
    const probe = join(root, 'src', 'http', `layer-probe-${process.pid}.ts`);
    writeFileSync(
      probe,
      "import { keys } from '../layout.ts';\nimport type { Store } from '../store/contract.ts';\nexport const probe: [unknown, Store | undefined] = [keys, undefined];\n",
    );
    try {
      const biome = join(root, 'node_modules', '.bin', 'biome');
      const run = await promisify(execFile)(biome, ['lint', probe], { cwd: root }).then(
        () => ({ code: 0, output: '' }),
        (error: { code: number; stdout: string; stderr: string }) => ({
          code: error.code,
          output: error.stdout + error.stderr,
        }),
      );
      assert.notEqual(run.code, 0, 'the probe must not pass the lint');
      assert.equal(run.output.match(/noRestrictedImports/g)?.length, 2, run.output);
    } finally {
      rmSync(probe, { force: true });
    }
  });
});
