// Server-Sent Events framing (WHATWG HTML §9.2 "Server-sent events"). Every
// frame is built once and the same bytes go to every watcher that wants it.
// JSON.stringify never emits a raw newline, so a payload is always one
// `data:` line.
import { watchClientRetryMs } from '../constants.ts';

/** What a watcher sees of a SKU: the API's stock event payload (docs/api.md) without the event's own revision. */
export interface StockState {
  sku: string;
  product: string;
  total: number;
  reserved: number;
  sold: number;
  available: number;
  /** The store revision that last wrote the SKU record. */
  version: number;
}

/** Why a stream gives the client a fresh snapshot instead of the changes it asked for. */
export type ResyncReason = 'history_expired' | 'unknown_revision';

/** Why the server ends a stream; also the `reason` label of the dropped-watchers metric. */
export type DropReason = 'lagging' | 'stalled' | 'shutdown';

function stockPayload(state: StockState) {
  return {
    sku: state.sku,
    total: state.total,
    reserved: state.reserved,
    sold: state.sold,
    available: state.available,
    version: state.version,
  };
}

/** `stock`: one committed change; `id` is the store revision that committed it. */
export function stockFrame(state: StockState, revision: number): Buffer {
  return Buffer.from(
    `event: stock\nid: ${revision}\ndata: ${JSON.stringify({ ...stockPayload(state), revision })}\n\n`,
  );
}

/** `snapshot` (first event of a fresh stream) or `resync` (history could not cover the asked revision). */
export function snapshotFrame(
  states: readonly StockState[],
  revision: number,
  resync?: { reason: ResyncReason; lastEventId: number },
): Buffer {
  const data = { revision, ...(resync ?? {}), skus: states.map(stockPayload) };
  return Buffer.from(`event: ${resync ? 'resync' : 'snapshot'}\nid: ${revision}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The final event of a stream the server ends. */
export function disconnectFrame(reason: DropReason, detail: string): Buffer {
  return Buffer.from(`event: disconnect\ndata: ${JSON.stringify({ reason, detail })}\n\n`);
}

/** Tells EventSource how long to wait before reconnecting; sent first on every stream. */
export const retryFrame = Buffer.from(`retry: ${watchClientRetryMs}\n\n`);

/** A comment line: ignored by clients, keeps proxies and dead-peer detection busy. */
export const heartbeatFrame = Buffer.from(':\n\n');
