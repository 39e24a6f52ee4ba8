// A watcher that stops reading costs bounded memory: nothing more is queued
// for it once its socket holds unsent bytes; when it drains it gets the latest
// state per SKU (coalesced), and when it stays behind it is dropped with a
// final `disconnect` event saying why. Memory is checked on the hub's own
// accounting of buffered bytes, not on wall-clock time or RSS.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { watchLagRevisionsMax, watchWriteBytesMax } from '../../src/constants.ts';
import type { SkuRecord } from '../../src/domain/types.ts';
import { startTestService, type TestService } from '../support/service.ts';
import { commitSkuRecord, eventually, rawWatch, watch } from '../support/watch.ts';

/** Node's default socket highWaterMark: a write is refused (needs drain) beyond it. */
const socketHighWaterMarkBytes = 16 * 1024;
/** What one watcher may hold: the high-water mark plus one bounded write. */
const perWatcherBytesMax = socketHighWaterMarkBytes + watchWriteBytesMax;
/** Commits the test may make before it calls the server unbounded. */
const commitsMax = 60_000;
const commitConcurrency = 64;

let server: TestService;
before(async () => {
  server = await startTestService();
});
after(async () => {
  await server.stop();
  server.remove();
});

function record(sku: string, total: number): SkuRecord {
  return {
    sku,
    product: 'slow',
    size: 'M',
    color: 'red',
    priceCents: 1,
    maxPerUser: null,
    total,
    reserved: 0,
    sold: 0,
    orderSeq: 0,
    initialStock: total,
  };
}

test('a client that stops reading is coalesced, then dropped as lagging, and its memory stays bounded', async () => {
  const { store, watch: hub, metrics } = server.service;
  // Long ids make long events, so the kernel's socket buffers fill after fewer commits.
  const sku = `slow-${'x'.repeat(120)}`;
  let total = 1;
  await commitSkuRecord(store, record(sku, total));
  const slow = rawWatch(server.url, `sku=${sku}`);
  await slow.waitFor(/event: snapshot/);
  // A well-behaved spec client on the same SKU keeps up throughout.
  const healthy = watch(server.url, `sku=${sku}`);
  await healthy.waitFor((event) => event.type === 'snapshot');
  slow.socket.pause();

  let peakBytes = 0;
  const commitRound = async () => {
    await Promise.all(
      Array.from({ length: commitConcurrency }, () => {
        total++;
        return commitSkuRecord(store, record(sku, total));
      }),
    );
    peakBytes = Math.max(peakBytes, hub.bufferedBytes());
    assert.ok(
      hub.bufferedBytes() <= hub.subscriberCount * perWatcherBytesMax + perWatcherBytesMax,
      `hub holds ${hub.bufferedBytes()} bytes for ${hub.subscriberCount} watchers`,
    );
  };

  // Once the healthy client has every event, any unsent bytes the hub holds are the slow client's
  // (on a busy machine the healthy one can briefly hold some too).
  let healthySeen = 0;
  const healthyCaughtUp = async () => {
    await healthy.waitFor((event) => event.type === 'stock' && event.data.total === total, healthySeen);
    healthySeen = healthy.events.length;
  };

  // 1. Fill the slow client's socket until the hub sees unsent bytes (it stops queueing for it).
  let commits = 0;
  for (;;) {
    assert.ok(commits < commitsMax, 'the slow socket never filled');
    await commitRound();
    commits += commitConcurrency;
    await healthyCaughtUp();
    if (hub.bufferedBytes() > 0) break;
  }
  const filledAfter = commits;
  // Commits while it holds unsent bytes are passed over for it; without them, a drain that beats
  // the next commit would leave nothing to coalesce, and the client would simply keep up again.
  // The healthy client getting them shows the hub's pass has carried them (and passed it over).
  const coalescedBefore = hub.stats.eventsCoalesced;
  await commitRound();
  commits += commitConcurrency;
  await healthyCaughtUp();

  // 2. It reads again: once drained it gets coalesced state, not the backlog.
  slow.socket.resume();
  for (let round = 0; hub.stats.eventsCoalesced === coalescedBefore; round++) {
    assert.ok(
      round < 1_000,
      `the drained client was never coalesced: ${JSON.stringify({ ...hub.stats, watchers: hub.subscriberCount, buffered: hub.bufferedBytes(), filledAfter })}`,
    );
    await commitRound();
    commits += commitConcurrency;
  }
  const coalesced = hub.stats.eventsCoalesced - coalescedBefore;

  // 3. It stops reading for good: it is dropped once it is watchLagRevisionsMax revisions behind.
  slow.socket.pause();
  while (hub.stats.dropped.lagging === 0) {
    assert.ok(commits < commitsMax, 'the lagging client was never dropped');
    await commitRound();
    commits += commitConcurrency;
  }
  assert.equal(hub.subscriberCount, 1, 'only the healthy client is left');

  // The healthy client saw every change, in order, up to the last.
  await healthy.waitFor((event) => event.type === 'stock' && event.data.total === total);
  const totals = healthy.events.filter((e) => e.type === 'stock').map((e) => e.data.total as number);
  assert.deepEqual(
    totals,
    Array.from({ length: total - 1 }, (_, i) => i + 2),
    'the healthy client lost nothing',
  );
  healthy.close();

  // The dropped client, reading again, gets the final event saying why; then the server closes.
  slow.socket.resume();
  await slow.closed;
  const text = slow.received();
  const final = /event: disconnect\ndata: (.*)\n\n$/.exec(text);
  assert.ok(final, `the stream ends with a disconnect event: ${text.slice(-300)}`);
  assert.equal(JSON.parse(final[1]!).reason, 'lagging');
  const ids = [...text.matchAll(/\nid: (\d+)\n/g)].map((match) => Number(match[1]));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, 'the slow client still saw ascending ids');
  assert.ok(ids.length < commits, 'the slow client got fewer events than commits (coalesced)');

  await eventually(() => hub.subscriberCount === 0 && hub.closingCount === 0, 'every socket released');
  assert.equal(hub.bufferedBytes(), 0);
  const scraped = await metrics.registry.metrics();
  assert.match(scraped, /hotstock_watch_subscribers_dropped_total\{reason="lagging"\} 1/);
  assert.match(scraped, /hotstock_watch_events_coalesced_total [1-9]/);
  console.log(
    `# socket full after ${filledAfter} commits; coalesced ${coalesced} events on drain; dropped as lagging after ${commits} commits ` +
      `(limit ${watchLagRevisionsMax} revisions behind); peak hub buffered bytes ${peakBytes}; slow client got ${ids.length} events`,
  );
});
