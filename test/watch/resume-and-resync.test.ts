// Last-Event-ID resumes from the bounded history with exactly the missed
// changes; an id the history cannot cover gets a `resync` event carrying a
// fresh snapshot instead.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freshSku, getSku, ledger } from '../support/api-helpers.ts';
import { reserve, startTestService, type TestService, tempDataDir } from '../support/service.ts';
import { stockRevisions, watch } from '../support/watch.ts';

let server: TestService;
before(async () => {
  server = await startTestService();
});
after(async () => {
  await server.stop();
  server.remove();
});

async function reserveSome(sku: string, count: number, label: string): Promise<number[]> {
  const revisions: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await reserve(server.url, { sku, qty: 1, userId: `${label}-${i}` });
    assert.equal(response.status, 201);
    revisions.push(response.body.version as number);
  }
  return revisions;
}

test('resuming with Last-Event-ID gets exactly the changes missed while away, and no snapshot', async () => {
  const sku = await freshSku(server.url, 'watch-resume', 100);
  const noise = await freshSku(server.url, 'watch-noise', 100);
  const first = watch(server.url, `sku=${sku}`);
  await first.waitFor((event) => event.type === 'snapshot');
  await reserveSome(sku, 3, 'before');
  const seen = await first.waitFor((event) => event.type === 'stock' && event.data.reserved === 3);
  first.close();

  const missed = await reserveSome(sku, 6, 'away');
  await reserveSome(noise, 2, 'noise');

  for (const how of ['header', 'query'] as const) {
    const resumed =
      how === 'header'
        ? watch(server.url, `sku=${sku}`, { 'last-event-id': seen.id })
        : watch(server.url, `sku=${sku}&lastEventId=${seen.id}`);
    try {
      await resumed.waitFor((event) => event.type === 'stock' && event.data.reserved === 9);
      assert.deepEqual(
        resumed.events.map((event) => event.type),
        missed.map(() => 'stock'),
        `${how}: only the missed stock events`,
      );
      assert.deepEqual(stockRevisions(resumed.events), missed, `${how}: exactly the missed revisions, in order`);
      console.log(`# resume by ${how} from ${seen.id}: got ${stockRevisions(resumed.events).join(',')}`);
    } finally {
      resumed.close();
    }
  }
});

test('an id older than the history (after a restart) or newer than the store gets resync with a fresh snapshot', async () => {
  const { dir, remove } = tempDataDir('watch-resync');
  let first: TestService | undefined = await startTestService({ dataDir: dir });
  let second: TestService | undefined;
  try {
    const sku = await freshSku(first.url, 'watch-resync', 50);
    const watcher = watch(first.url, `sku=${sku}`);
    const snapshot = await watcher.waitFor((event) => event.type === 'snapshot');
    watcher.close();
    for (let i = 0; i < 3; i++) assert.equal((await reserve(first.url, { sku, qty: 1, userId: `r${i}` })).status, 201);
    await first.stop();
    first = undefined;

    // A new process has an empty history: it covers only changes after its start.
    second = await startTestService({ dataDir: dir });
    const stale = watch(second.url, `sku=${sku}`, { 'last-event-id': snapshot.id });
    try {
      const resync = await stale.waitFor(() => true);
      assert.equal(resync.type, 'resync');
      assert.equal(resync.data.reason, 'history_expired');
      assert.equal(resync.data.lastEventId, Number(snapshot.id));
      const items = resync.data.skus as Record<string, unknown>[];
      assert.deepEqual(ledger(items[0] as never), ledger(await getSku(second.url, sku)));
      assert.equal(items[0]!.reserved, 3);
      // Then it is live like any stream.
      assert.equal((await reserve(second.url, { sku, qty: 1, userId: 'after' })).status, 201);
      const next = await stale.waitFor((event) => event.type === 'stock');
      assert.ok(Number(next.id) > Number(resync.id));
      console.log(`# Last-Event-ID ${snapshot.id} after restart -> resync at ${resync.id}, then stock ${next.id}`);
    } finally {
      stale.close();
    }

    const future = watch(second.url, `sku=${sku}`, { 'last-event-id': '999999999' });
    try {
      const resync = await future.waitFor(() => true);
      assert.equal(resync.type, 'resync');
      assert.equal(resync.data.reason, 'unknown_revision');
    } finally {
      future.close();
    }
  } finally {
    await first?.stop();
    await second?.stop();
    remove();
  }
});
