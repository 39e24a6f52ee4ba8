// The operator page (/ui) in a real headless Chromium: the key typed in the
// page connects the live stock watch, a reservation made by the test shows on
// the page within a second, sold-out SKUs carry a badge, the tiles show
// reservations/s, shedding and the breaker, the key never appears in a URL
// or in storage, and a screenshot under load is saved as a test artifact
// (.artifacts/ui/, not committed). Needs /usr/bin/chromium (Debian's
// `chromium`, installed by .ci/run).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { getSku } from '../support/api-helpers.ts';
import { runWorkers } from '../support/load.ts';
import { clientKey, createSku, reserve, startTestService, type TestService } from '../support/service.ts';

const chromiumPath = process.env.HOTSTOCK_TEST_CHROMIUM ?? '/usr/bin/chromium';
const artifactsDir = fileURLToPath(new URL('../../.artifacts/ui/', import.meta.url));
/** A stock change must reach the page this fast: what the page promises an operator. */
const pageUpdateMsMax = 1_000;
/** Longest the test waits for the page to connect or for the tiles to fill in. */
const pageWaitMs = 20_000;
/** How long the page is kept under load before the screenshot. */
const loadMs = 3_000;
const loadWorkers = 8;

const skus = ['ui-tee-s', 'ui-tee-m', 'ui-tee-l', 'ui-tee-xl', 'ui-cap-red', 'ui-cap-black'];
const soldOutSku = 'ui-cap-black';

async function launch(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

async function seed(api: TestService): Promise<void> {
  for (const [index, sku] of skus.entries()) {
    const [product, size] = sku.startsWith('ui-tee') ? ['piggy-tee', sku.slice(7).toUpperCase()] : ['piggy-cap', 'one'];
    const color = sku.startsWith('ui-cap') ? sku.slice(7) : 'pink';
    await createSku(api.url, sku, { initialStock: sku === soldOutSku ? 1 : 400 + index * 100, product, size, color });
  }
  assert.equal((await reserve(api.url, { sku: soldOutSku, qty: 1, userId: 'early-bird' })).status, 201);
}

function availableOnPage(page: Page, sku: string): Promise<string | null> {
  return page.locator(`[data-sku="${sku}"] .available`).textContent();
}

/** Waits until the page shows exactly `units` available for `sku`. */
async function pageShows(page: Page, sku: string, units: number, timeoutMs: number): Promise<void> {
  await page
    .locator(`[data-sku="${sku}"] .available`, { hasText: new RegExp(`^${units}$`) })
    .waitFor({ timeout: timeoutMs });
}

/** Reserves on the stocked SKUs from several workers until `stop` says so; returns how many were created. */
async function loadUntil(api: TestService, stop: () => boolean): Promise<number> {
  let created = 0;
  await runWorkers(loadWorkers, async (worker) => {
    for (let i = 0; !stop(); i++) {
      const sku = skus[(worker + i) % (skus.length - 1)]!;
      const answer = await reserve(api.url, { sku, qty: 1, userId: `load-${worker}-${i}` });
      if (answer.status === 201) created++;
    }
  });
  return created;
}

async function connect(page: Page, api: TestService, requestUrls: string[]): Promise<void> {
  page.on('request', (request) => requestUrls.push(request.url()));
  await page.goto(`${api.url}/ui`);
  await page.fill('#key', clientKey);
  await page.click('button[type=submit]');
  await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: pageWaitMs });
  assert.equal(await page.locator('.sku').count(), skus.length);
  for (const sku of skus) await pageShows(page, sku, (await getSku(api.url, sku)).available, pageWaitMs);
}

test('the operator page shows live stock, rates and states, and keeps the key out of URLs', {
  skip: !existsSync(chromiumPath) && `no ${chromiumPath}`,
}, async () => {
  const api = await startTestService();
  const profileDir = mkdtempSync(join(tmpdir(), 'hotstock-chromium-'));
  const browser = await launch(profileDir);
  try {
    await seed(api);
    const page = await browser.newPage();
    const requestUrls: string[] = [];
    await connect(page, api, requestUrls);

    // A reservation made now shows on the page within a second of sending it.
    const before = Number(await availableOnPage(page, 'ui-tee-m'));
    const sentAt = performance.now();
    const answer = await reserve(api.url, { sku: 'ui-tee-m', qty: 2, userId: 'watcher' });
    assert.equal(answer.status, 201);
    await pageShows(page, 'ui-tee-m', before - 2, Math.max(1, pageUpdateMsMax - (performance.now() - sentAt)));
    console.log(`# the reservation showed on the page ${Math.round(performance.now() - sentAt)} ms after it was sent`);

    // Sold out: a badge, on that SKU only.
    assert.ok(await page.locator(`[data-sku="${soldOutSku}"] .badge`).isVisible());
    assert.equal(await page.locator('.sku.sold-out').count(), 1);
    // The tiles fill in from /metrics, read once a second.
    for (const [tile, text] of [
      ['#breaker', 'none'],
      ['#breaker-note', 'embedded store'],
      ['#queue', '0'],
      ['#shedding', 'no'],
    ] as const) {
      await page.locator(tile, { hasText: new RegExp(`^${text}$`) }).waitFor({ timeout: pageWaitMs });
    }

    // Under load the tiles show reservations/s; the screenshot is the test's artifact.
    let loading = true;
    const load = loadUntil(api, () => !loading);
    await new Promise((resolve) => setTimeout(resolve, loadMs));
    await page
      .locator('#rate-reservations', { hasText: /^(?:[1-9][0-9]*(?:\.[0-9])?|0\.[1-9])$/ })
      .waitFor({ timeout: pageWaitMs });
    mkdirSync(artifactsDir, { recursive: true });
    const screenshot = join(artifactsDir, 'operator-page.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    loading = false;
    const created = await load;
    assert.ok(created > 0);
    assert.deepEqual([...readFileSync(screenshot).subarray(1, 4)], [...Buffer.from('PNG')]);
    console.log(`# screenshot under load (${created} reservations): ${screenshot}`);

    // Once the load stops, the page agrees with the API on every SKU.
    for (const sku of skus) await pageShows(page, sku, (await getSku(api.url, sku)).available, pageWaitMs);

    // The key went only into Authorization headers: no URL, no storage, gone on reload.
    assert.ok(requestUrls.some((url) => url.includes('/v1/watch?sku=')));
    assert.deepEqual(
      requestUrls.filter((url) => url.includes(clientKey)),
      [],
    );
    const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
    assert.ok(!stored.includes(clientKey), 'the key is not in web storage');
    assert.ok(!(await (await fetch(`${api.url}/ui`)).text()).includes(clientKey));
    await page.reload();
    assert.equal(await page.inputValue('#key'), '');
    assert.equal(await page.locator('#connection').textContent(), 'not connected');
  } finally {
    await browser.close();
    rmSync(profileDir, { recursive: true, force: true });
    await api.stop();
    api.remove();
  }
});
