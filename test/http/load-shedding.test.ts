// Load shedding on event-loop lag: while the process is behind, mutations get
// a fast 503 `overloaded` with Retry-After and change nothing; reads still
// answer; once the loop catches up, mutations are accepted again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { eventLoopLagWindowMs, shedEventLoopLagMsDefault } from '../../src/constants.ts';
import { adminKey, api, reserve, startTestService, type TestService } from '../support/service.ts';

/** Times the set-up's create is tried while a busy machine keeps lagging the loop. */
const createAttemptsMax = 10;
/** Longest the test waits for the shedder to notice (or stop noticing) lag; it needs about one window. */
const noticeWithinMs = 20 * eventLoopLagWindowMs;

let server: TestService;
before(async () => {
  server = await startTestService({ shedEventLoopLagMs: shedEventLoopLagMsDefault });
  // Start-up work (warming, generating the OpenAPI document the test clients read) can lag the loop for a window.
  await waitFor(() => !server.service.shedder.shedding, 'the loop to settle after start');
  // On a busy machine the loop can fall behind again; a create shed meanwhile is retried, as a client would.
  for (let attempt = 1; ; attempt++) {
    const created = await api(server.url, 'PUT', '/v1/skus/lagged', {
      key: adminKey,
      body: { product: 'piggy-shirt', size: 'M', color: 'red', priceCents: 1999, initialStock: 10 },
    });
    if (created.status === 201) break;
    assert.ok(created.status === 503 && attempt < createAttemptsMax, `creating lagged: ${created.status}`);
    await waitFor(() => !server.service.shedder.shedding, 'the loop to settle again');
  }
});
after(async () => {
  await server.stop();
  server.remove();
});

/** Keeps the event loop blocked in bursts longer than the shed bound, leaving short gaps for I/O. */
function blockInBursts(): () => void {
  let running = true;
  const burst = () => {
    if (!running) return;
    const until = performance.now() + shedEventLoopLagMsDefault * 2.5;
    while (performance.now() < until) {
      // busy: this is the lag
    }
    setTimeout(2).then(burst);
  };
  burst();
  return () => {
    running = false;
  };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + noticeWithinMs;
  while (!condition()) {
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await setTimeout(10);
  }
}

test('mutations are shed while the event loop lags, reads are not, and admission resumes after', async () => {
  const stopBlocking = blockInBursts();
  try {
    await waitFor(() => server.service.shedder.shedding, 'the shedder to notice the lag');
    const shed = await reserve(server.url, { sku: 'lagged', qty: 1, userId: 'u1' });
    assert.equal(shed.status, 503);
    assert.equal(shed.body.code, 'overloaded');
    assert.equal(shed.headers.get('retry-after'), '1');
    assert.match(shed.headers.get('content-type') ?? '', /application\/problem\+json/);
    const read = await api(server.url, 'GET', '/v1/skus/lagged');
    assert.equal(read.status, 200);
    assert.equal(read.body.reserved, 0, 'the shed reservation changed nothing');
  } finally {
    stopBlocking();
  }
  await waitFor(() => !server.service.shedder.shedding, 'the shedder to see the loop caught up');
  const accepted = await reserve(server.url, { sku: 'lagged', qty: 1, userId: 'u1' });
  assert.equal(accepted.status, 201);
  const metrics = await api(server.url, 'GET', '/metrics', { key: null });
  assert.match(String(metrics.body), /hotstock_requests_shed_total\{reason="event_loop_lag"\} [1-9]/);
});
