// Watching stock in tests: a real SSE client (the `eventsource` package, which
// follows the WHATWG spec, reconnects by itself and sends Last-Event-ID) that
// collects events, and a raw-socket watcher for what a spec client hides
// (a client that stops reading, exact bytes, fast churn).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { EventSource } from 'eventsource';
import { Agent, fetch as undiciFetch } from 'undici';
import type { SkuRecord } from '../../src/domain/types.ts';
import { keys } from '../../src/layout.ts';
import type { Store } from '../../src/store/contract.ts';
import { sleep } from './load.ts';
import { clientKey } from './service.ts';

/** Longest a test waits for an expected event before failing. */
export const eventWaitMs = 15_000;

export interface SseEvent {
  type: string;
  id: string;
  data: Record<string, unknown>;
}

export interface Watcher {
  source: EventSource;
  events: SseEvent[];
  /** Resolves with the first event (from index `from` on) that satisfies `predicate`. */
  waitFor(predicate: (event: SseEvent) => boolean, from?: number): Promise<SseEvent>;
  close(): void;
}

const eventTypes = ['snapshot', 'stock', 'resync', 'disconnect'] as const;

/** Opens a watch with the spec client; `headers` go on every (re)connection, e.g. a first Last-Event-ID. */
export function watch(base: string, query: string, headers: Record<string, string> = {}): Watcher {
  let firstRequest = true;
  // Its own connection pool, destroyed on close, so no idle or spare connection outlives the watcher.
  const dispatcher = new Agent({ connections: 1 });
  const source = new EventSource(`${base}/v1/watch?${query}`, {
    fetch: (input, init) => {
      const extra = firstRequest ? headers : {};
      firstRequest = false;
      return undiciFetch(input, {
        ...(init as object),
        dispatcher,
        headers: { ...init.headers, authorization: `Bearer ${clientKey}`, ...extra },
      }) as unknown as Promise<Response>;
    },
  });
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  for (const type of eventTypes) {
    source.addEventListener(type, (event) => {
      events.push({ type, id: event.lastEventId, data: JSON.parse(event.data) as Record<string, unknown> });
      for (const wake of waiters) wake();
    });
  }
  const waitFor = (predicate: (event: SseEvent) => boolean, from = 0): Promise<SseEvent> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = events.slice(from).find(predicate);
        if (found === undefined) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching event within ${eventWaitMs} ms; got ${JSON.stringify(events).slice(-2000)}`));
      }, eventWaitMs);
      waiters.add(check);
      check();
    });
  const close = () => {
    source.close();
    void dispatcher.destroy();
  };
  return { source, events, waitFor, close };
}

/** Revisions of the `stock` events, in arrival order. */
export function stockRevisions(events: readonly SseEvent[]): number[] {
  return events.filter((event) => event.type === 'stock').map((event) => Number(event.id));
}

export function assertAscending(revisions: readonly number[], label: string): void {
  for (let i = 1; i < revisions.length; i++) {
    assert.ok(revisions[i]! > revisions[i - 1]!, `${label}: revision ${revisions[i]} after ${revisions[i - 1]}`);
  }
}

/** A watch over a raw socket: the request, then every byte that arrives. */
export interface RawWatcher {
  socket: Socket;
  received(): string;
  /** Waits until the received text matches `pattern`. */
  waitFor(pattern: RegExp): Promise<void>;
  closed: Promise<void>;
}

export function rawWatch(base: string, query: string, headers: Record<string, string> = {}): RawWatcher {
  const { hostname, port } = new URL(base);
  const socket = connect({ host: hostname, port: Number(port) });
  const chunks: Buffer[] = [];
  const lines = Object.entries({ authorization: `Bearer ${clientKey}`, ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.write(`GET /v1/watch?${query} HTTP/1.1\r\nHost: ${hostname}\r\n${lines}\r\n`);
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const received = () => Buffer.concat(chunks).toString('utf8');
  const waitFor = async (pattern: RegExp) => {
    const deadline = Date.now() + eventWaitMs;
    while (!pattern.test(received())) {
      assert.ok(Date.now() < deadline, `no ${pattern} within ${eventWaitMs} ms; got ${received().slice(-1000)}`);
      await sleep(10);
    }
  };
  return { socket, received, waitFor, closed };
}

/** Polls `condition` every 10 ms until it holds; fails after `timeoutMs`. */
export async function eventually(condition: () => boolean, label: string, timeoutMs = eventWaitMs): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `${label}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * Commits a new SKU record straight to the store, as another instance
 * sharing the store would: the watch must see it through the change feed.
 */
export async function commitSkuRecord(store: Store, record: SkuRecord): Promise<number> {
  const result = await store.commit([], [{ type: 'put', key: keys.sku(record.sku), value: record }]);
  assert.ok(result.ok);
  return result.revision;
}
