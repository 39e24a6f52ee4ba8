// A real SSE client rides out a server restart: it hears why the stream ends
// (`disconnect`, reason `shutdown`), reconnects by itself with Last-Event-ID,
// and goes on receiving changes from the new process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../support/etcd.ts';
import { createSku, killIfRunning, reserve, type ServerProcess, spawnServer, tempDataDir } from '../support/service.ts';
import { assertAscending, stockRevisions, watch } from '../support/watch.ts';

test('a watcher reconnects after the server restarts and keeps receiving changes in order', async () => {
  const { dir, remove } = tempDataDir('watch-restart');
  const port = await freePort();
  let server: ServerProcess | undefined = await spawnServer(dir, ['--port', String(port)]);
  const base = server.url;
  try {
    await createSku(base, 'restart-sku', { initialStock: 20 });
    const live = watch(base, 'sku=restart-sku');
    try {
      await live.waitFor((event) => event.type === 'snapshot');
      assert.equal((await reserve(base, { sku: 'restart-sku', qty: 1, userId: 'a' })).status, 201);
      await live.waitFor((event) => event.type === 'stock' && event.data.reserved === 1);

      server.child.kill('SIGTERM');
      const goodbye = await live.waitFor((event) => event.type === 'disconnect');
      assert.equal(goodbye.data.reason, 'shutdown');
      assert.equal(await server.exited, 0);
      server = await spawnServer(dir, ['--port', String(port)]);
      assert.equal(server.url, base);

      // The client reconnects on its own (retry: 1000) with Last-Event-ID; the new process's
      // history starts at its own start, which is exactly where the client left off.
      const reconnected = live.events.length;
      let answer = await reserve(base, { sku: 'restart-sku', qty: 2, userId: 'b' });
      assert.equal(answer.status, 201);
      const after = await live.waitFor((event) => event.type === 'stock' && event.data.reserved === 3, reconnected);
      assert.equal(Number(after.id), answer.body.version);
      answer = await reserve(base, { sku: 'restart-sku', qty: 1, userId: 'c' });
      await live.waitFor((event) => event.type === 'stock' && event.data.reserved === 4, reconnected);
      assertAscending(stockRevisions(live.events), 'stock events across the restart');
      const types = live.events.map((event) => event.type);
      console.log(`# events across the restart: ${types.join(', ')}; ids ${live.events.map((e) => e.id).join(',')}`);
      assert.ok(!types.slice(reconnected).includes('snapshot'), 'resumed, not restarted from a snapshot');
    } finally {
      live.close();
    }
  } finally {
    await killIfRunning(server);
    remove();
  }
});
