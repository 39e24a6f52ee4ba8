// Watchers that come and go leave nothing behind: after 2,000 connect /
// disconnect cycles the subscriber gauge is back to 0 and no socket is held.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freshSku } from '../support/api-helpers.ts';
import { mapConcurrent } from '../support/load.ts';
import { api, startTestService, type TestService } from '../support/service.ts';
import { eventually, rawWatch } from '../support/watch.ts';

const cycles = 2_000;
const concurrency = 50;

let server: TestService;
before(async () => {
  server = await startTestService();
});
after(async () => {
  await server.stop();
  server.remove();
});

test(`${cycles} connect/disconnect cycles bring the subscriber gauge back to 0`, async () => {
  const sku = await freshSku(server.url, 'watch-churn', 1_000);
  let peak = 0;
  await mapConcurrent(
    Array.from({ length: cycles }, (_, i) => i),
    concurrency,
    async (i) => {
      const watcher = rawWatch(server.url, `sku=${sku}`);
      await watcher.waitFor(/event: snapshot\n/);
      peak = Math.max(peak, server.service.watch.subscriberCount);
      // Half leave politely (FIN), half vanish with a reset.
      if (i % 2 === 0) watcher.socket.end();
      else watcher.socket.resetAndDestroy();
      await watcher.closed;
    },
  );
  await eventually(() => server.service.watch.subscriberCount === 0, 'subscribers gone');
  const scraped = await api<string>(server.url, 'GET', '/metrics', { key: null });
  assert.match(scraped.body, /^hotstock_watch_subscribers 0$/m);
  assert.equal(server.service.watch.bufferedBytes(), 0);
  console.log(`# ${cycles} cycles, peak ${peak} concurrent watchers, gauge back to 0`);
});
