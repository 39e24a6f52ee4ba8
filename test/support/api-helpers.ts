// Small HTTP API v1 helpers the tests share: fresh SKUs, reading SKUs and
// orders, the admin writes (PUT, adjustments), transitions, a reservation that
// must succeed, batches, and walking paginated listings. Every helper takes the base
// URL of the service first, like `api`, `createSku` and `reserve`. Reads that
// must succeed assert their status and are bounded in time.
import assert from 'node:assert/strict';
import type { OrderView, SkuView } from '../../src/http/views.ts';
import { callTimeoutMs } from './load.ts';
import { type ApiResponse, adminKey, api, clientKey, createSku, freshIdempotencyKey, reserve } from './service.ts';

/** Pages one listing walk may fetch before the test calls it a runaway cursor. */
const listingPagesMax = 1_000;

let skuSequence = 0;
/** A SKU id not used before in this test process: `<label>-<n>`. */
export function nextSkuId(label: string): string {
  skuSequence++;
  return `${label}-${skuSequence}`;
}

/** Creates a SKU under a fresh id (see `nextSkuId`) and returns the id. */
export async function freshSku(base: string, label: string, initialStock = 10, maxPerUser?: number): Promise<string> {
  const sku = nextSkuId(label);
  await createSku(base, sku, maxPerUser === undefined ? { initialStock } : { initialStock, maxPerUser });
  return sku;
}

/** GET /v1/skus/{sku}, which must answer 200; the whole response, for its ETag. */
export async function readSku(base: string, sku: string): Promise<ApiResponse<SkuView>> {
  const response = await api<SkuView>(base, 'GET', `/v1/skus/${encodeURIComponent(sku)}`, {
    timeoutMs: callTimeoutMs,
  });
  assert.equal(response.status, 200, `GET sku ${sku}: ${response.status} ${JSON.stringify(response.body)}`);
  return response;
}

/** The SKU as the API shows it (GET must answer 200). */
export async function getSku(base: string, sku: string): Promise<SkuView> {
  return (await readSku(base, sku)).body;
}

/** GET /v1/orders/{id}, whatever it answers. */
export function getOrder(base: string, orderId: string): Promise<ApiResponse<OrderView>> {
  return api<OrderView>(base, 'GET', `/v1/orders/${encodeURIComponent(orderId)}`, { timeoutMs: callTimeoutMs });
}

/** The stock ledger of a SKU view, without its identity and version. */
export function ledger(sku: Pick<SkuView, 'total' | 'reserved' | 'sold' | 'available'>) {
  return { total: sku.total, reserved: sku.reserved, sold: sku.sold, available: sku.available };
}

/** PUT /v1/skus/{sku} with the admin key. */
export function putSku(
  base: string,
  sku: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<ApiResponse<SkuView>> {
  return api<SkuView>(base, 'PUT', `/v1/skus/${encodeURIComponent(sku)}`, { key: adminKey, body, headers });
}

/**
 * A stock adjustment by `delta` (a restock when positive, else a write-off)
 * with the admin key, under a fresh Idempotency-Key unless `headers` names one.
 */
export function adjust(
  base: string,
  sku: string,
  delta: number,
  headers: Record<string, string> = {},
): Promise<ApiResponse<SkuView>> {
  return api<SkuView>(base, 'POST', `/v1/skus/${encodeURIComponent(sku)}/adjustments`, {
    key: adminKey,
    body: { delta, reason: delta > 0 ? 'restock' : 'write-off' },
    headers: { 'idempotency-key': freshIdempotencyKey('adjust'), ...headers },
  });
}

/**
 * A transition POST (pay, ship, complete, cancel). Transitions take no body
 * (docs/api.md); this sends the empty JSON object the schema tolerates.
 */
export function transition(
  base: string,
  orderId: string,
  action: string,
  headers: Record<string, string> = {},
): Promise<ApiResponse<OrderView>> {
  return api<OrderView>(base, 'POST', `/v1/orders/${encodeURIComponent(orderId)}/${action}`, { body: {}, headers });
}

/** A reservation that must succeed: 201 with a `created` order, which it returns. */
export async function reserveOk(base: string, sku: string, qty: number, userId: string): Promise<OrderView> {
  const response = await reserve(base, { sku, qty, userId });
  assert.equal(response.status, 201, JSON.stringify(response.body));
  const order = response.body as unknown as OrderView;
  assert.equal(order.state, 'created');
  return order;
}

/** A listing page as the API sends it. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface BatchItem {
  sku: string;
  qty: number;
  userId: string;
  idempotencyKey: string;
}

/** One item's answer in a batch: the status and body a single POST /v1/orders would have given. */
export interface BatchResult {
  status: number;
  body: Record<string, unknown>;
}

/** POST /v1/orders:batch. */
export function batch(
  base: string,
  items: readonly BatchItem[],
  key = clientKey,
): Promise<ApiResponse<{ results: BatchResult[] }>> {
  return api<{ results: BatchResult[] }>(base, 'POST', '/v1/orders:batch', { key, body: { items } });
}

/** Follows nextCursor from the first page to the last, collecting every item. */
export async function allPages<T>(
  base: string,
  path: string,
  query: Record<string, string>,
  limit: number,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < listingPagesMax, 'pagination terminates');
    const params = new URLSearchParams({ ...query, limit: String(limit) });
    if (cursor !== null) params.set('cursor', cursor);
    const page = await api<Page<T>>(base, 'GET', `${path}?${params}`, { timeoutMs: callTimeoutMs });
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.ok(page.body.items.length <= limit, `a page holds at most ${limit} items`);
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
    if (cursor === null) return items;
  }
}

/** Every order a listing query returns, page by page. */
export function listAllOrders(base: string, query: Record<string, string> = {}, limit = 500): Promise<OrderView[]> {
  return allPages<OrderView>(base, '/v1/orders', query, limit);
}

export function sortedIds(items: readonly { id: string }[]): string[] {
  return items.map((item) => item.id).sort();
}
