// The watch benchmark's clients: one process (pinned to the load CPU) holding
// thousands of raw TCP watch connections. It notes, with
// `process.hrtime.bigint()` (CLOCK_MONOTONIC: one clock for every process on
// the machine, as the servers use), when the bytes carrying each sampled event id arrive on each
// socket: the "delivery" end of commit-to-delivery (the moment Node hands
// this process the bytes, before any SSE parsing). The same code reads the
// hotstock server and the plain-TCP floor. Driven over IPC:
//   {type:'connect', url, path?, key?, count, sampleEvery} -> {type:'connected', count, failed}
//   {type:'measure', commitTimes} -> {type:'latency', ...}
//   {type:'close'} -> {type:'closed'}
//   {type:'churn', url, path, key, cycles, concurrency} -> {type:'churned', cycles, failed}
import { connect, type Socket } from 'node:net';

/** The machine's monotonic clock (CLOCK_MONOTONIC) in ms: the same clock in every process, unlike performance.now(). */
function clockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Connections opened at once while connecting thousands. */
const connectConcurrency = 256;
/** Loopback source addresses rotated through, so 50,000 churn cycles never run out of ephemeral ports. */
const sourceAddresses = Array.from({ length: 30 }, (_, i) => `127.0.0.${i + 2}`);
const firstBytesTimeoutMs = 30_000;

interface Watch {
  socket: Socket;
  lastId: number;
  /** Parser state across reads: characters of "\nid: " matched so far, or -1 while reading the id's digits. */
  matched: number;
  digits: number;
}

const watches: Watch[] = [];
/** Sampled event id -> arrival times (ms) on the sockets that got it. */
const arrivals = new Map<number, number[]>();
let sampleEvery = 1;
let deliveries = 0;
let sourceIndex = 0;
/** Every socket reads into this one buffer (net's `onread`): no allocation per read. */
const readBuffer = Buffer.alloc(64 * 1024);
const idPrefix = Buffer.from('\nid: ');
const newline = 10;

function nextSource(): string {
  sourceIndex = (sourceIndex + 1) % sourceAddresses.length;
  return sourceAddresses[sourceIndex]!;
}

function arrived(watch: Watch, id: number, at: number): void {
  if (!(id > watch.lastId)) return;
  watch.lastId = id;
  deliveries++;
  if (id % sampleEvery !== 0) return;
  let list = arrivals.get(id);
  if (list === undefined) {
    list = [];
    arrivals.set(id, list);
  }
  list.push(at);
}

/** Finds "\nid: <digits>\n" in the bytes as they come, across read boundaries, without copying them. */
function onRead(watch: Watch, length: number): void {
  const at = clockMs();
  for (let i = 0; i < length; i++) {
    const byte = readBuffer[i]!;
    if (watch.matched === -1) {
      if (byte >= 48 && byte <= 57) {
        watch.digits = watch.digits * 10 + (byte - 48);
        continue;
      }
      arrived(watch, watch.digits, at);
      watch.matched = byte === newline ? 1 : 0;
    } else if (byte === idPrefix[watch.matched]) {
      watch.matched++;
      if (watch.matched === idPrefix.length) {
        watch.matched = -1;
        watch.digits = 0;
      }
    } else {
      watch.matched = byte === newline ? 1 : 0;
    }
  }
}

/** Opens one connection, sends the request (if any), resolves once the first bytes arrived. */
function open(url: URL, request: string | undefined): Promise<Watch> {
  return new Promise((resolve, reject) => {
    let first = true;
    const watch: Watch = { socket: undefined as unknown as Socket, lastId: 0, matched: 0, digits: 0 };
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      localAddress: nextSource(),
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (length: number) => {
          onRead(watch, length);
          if (first) {
            first = false;
            clearTimeout(timer);
            socket.on('error', () => {});
            resolve(watch);
          }
          return true;
        },
      },
    });
    watch.socket = socket;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no bytes within the timeout'));
    }, firstBytesTimeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    if (request !== undefined) socket.write(request);
  });
}

function requestText(url: URL, path: string | undefined, key: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  return `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${key}\r\nAccept: text/event-stream\r\n\r\n`;
}

async function pool(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<number> {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      try {
        await task(index);
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return failed;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

function measure(commitTimes: [number, number][]) {
  let expected = 0;
  const latencies: number[] = [];
  for (const [id, committedAt] of commitTimes) {
    if (id % sampleEvery !== 0) continue;
    expected += watches.length;
    for (const at of arrivals.get(id) ?? []) latencies.push(at - committedAt);
  }
  const sorted = Float64Array.from(latencies).sort();
  return {
    type: 'latency',
    sampledEvents: commitTimes.filter(([id]) => id % sampleEvery === 0).length,
    samples: sorted.length,
    /** Sampled (socket, event) pairs never delivered: coalesced away, or still in flight at the end. */
    missing: expected - sorted.length,
    deliveries,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

process.on('message', async (message: Record<string, unknown>) => {
  if (message.type === 'connect') {
    const url = new URL(message.url as string);
    sampleEvery = message.sampleEvery as number;
    const request = requestText(url, message.path as string | undefined, message.key as string | undefined);
    const failed = await pool(message.count as number, connectConcurrency, async () => {
      watches.push(await open(url, request));
    });
    process.send!({ type: 'connected', count: watches.length, failed });
  } else if (message.type === 'measure') {
    process.send!(measure(message.commitTimes as [number, number][]));
  } else if (message.type === 'close') {
    for (const watch of watches.splice(0)) watch.socket.destroy();
    arrivals.clear();
    deliveries = 0;
    process.send!({ type: 'closed' });
  } else if (message.type === 'churn') {
    const url = new URL(message.url as string);
    const request = requestText(url, message.path as string, message.key as string);
    const failed = await pool(message.cycles as number, message.concurrency as number, async () => {
      const watch = await open(url, request);
      // A polite close (FIN), as a browser tab going away would.
      const closed = new Promise((resolve) => watch.socket.once('close', resolve));
      watch.socket.end();
      await closed;
    });
    process.send!({ type: 'churned', cycles: message.cycles, failed });
  }
});
process.send!({ type: 'ready' });
