// A real browser (Chromium, headless) on a page of another origin subscribes
// with EventSource and sees the snapshot and a live change; a fetch-based
// client sending Authorization passes the CORS preflight. Needs
// /usr/bin/chromium (Debian's `chromium`, installed by .ci/run).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { clientKey, createSku, reserve, startTestService } from '../support/service.ts';

const chromiumPath = process.env.HOTSTOCK_TEST_CHROMIUM ?? '/usr/bin/chromium';
const browserWaitMs = 20_000;

function page(apiBase: string): string {
  return `<!doctype html><meta charset="utf-8"><title>storefront</title><script>
  window.events = [];
  const stock = new EventSource(${JSON.stringify(`${apiBase}/v1/watch?sku=browser-sku`)});
  for (const type of ['snapshot', 'stock', 'resync']) {
    stock.addEventListener(type, (e) => window.events.push({ type, id: e.lastEventId, data: JSON.parse(e.data) }));
  }
  window.withKey = fetch(${JSON.stringify(`${apiBase}/v1/watch?sku=browser-sku`)}, {
    headers: { Authorization: 'Bearer ${clientKey}' },
  }).then(async (response) => {
    const reader = response.body.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    return { status: response.status, first: new TextDecoder().decode(value) };
  }, (error) => ({ error: String(error) }));
</script>`;
}

test('a page on another origin watches stock with EventSource', {
  skip: !existsSync(chromiumPath) && `no ${chromiumPath}`,
}, async () => {
  const api = await startTestService({ watchPublic: true });
  const site = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(api.url));
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  // `localhost` vs the API's 127.0.0.1 and another port: a different origin.
  const siteUrl = `http://localhost:${(site.address() as AddressInfo).port}/`;
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
  try {
    await createSku(api.url, 'browser-sku', { initialStock: 8 });
    const tab = await browser.newPage();
    await tab.goto(siteUrl);
    await tab.waitForFunction(() => (globalThis as unknown as { events: unknown[] }).events.length > 0, undefined, {
      timeout: browserWaitMs,
    });
    const answer = await reserve(api.url, { sku: 'browser-sku', qty: 3, userId: 'shopper' });
    assert.equal(answer.status, 201);
    await tab.waitForFunction(
      () => (globalThis as unknown as { events: { type: string }[] }).events.some((e) => e.type === 'stock'),
      undefined,
      { timeout: browserWaitMs },
    );
    const events = (await tab.evaluate(() => (globalThis as unknown as { events: unknown[] }).events)) as {
      type: string;
      id: string;
      data: Record<string, unknown>;
    }[];
    assert.equal(events[0]!.type, 'snapshot');
    const change = events.find((event) => event.type === 'stock')!;
    assert.equal(Number(change.id), answer.body.version);
    assert.equal(change.data.available, 5);
    const withKey = (await tab.evaluate(() => (globalThis as unknown as { withKey: Promise<unknown> }).withKey)) as {
      status?: number;
      first?: string;
      error?: string;
    };
    assert.equal(withKey.error, undefined, 'the preflighted fetch with Authorization was allowed');
    assert.equal(withKey.status, 200);
    assert.match(withKey.first ?? '', /retry: 1000/);
    console.log(`# ${siteUrl} saw ${events.map((event) => `${event.type}@${event.id}`).join(', ')}`);
  } finally {
    await browser.close();
    site.close();
    await api.stop();
    api.remove();
  }
});
