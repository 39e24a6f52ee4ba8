// The same-run floor for the watch benchmark: a plain TCP server (node:net,
// no HTTP, no store) on the same runtime that writes the same stock-event
// bytes to every connected socket, at the event rate the hotstock run saw.
// Each tick it takes every event due (one, or several if the previous loop
// over the sockets ran long), concatenates them once, writes the bytes to
// every socket in one tight loop, and notes the time just before the loop
// as the events' "commit" time (`process.hrtime.bigint()`, CLOCK_MONOTONIC).
// Driven over IPC: {type:'start', rate, durationMs} → {type:'done', commitTimes}.
import { createServer, type Socket } from 'node:net';

/** The machine's monotonic clock (CLOCK_MONOTONIC) in ms: the same clock in every process, unlike performance.now(). */
function clockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const sockets = new Set<Socket>();
const server = createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.on('error', () => {});
  socket.once('close', () => sockets.delete(socket));
  socket.write('retry: 1000\n\n');
});

function frame(id: number): string {
  const data = {
    sku: 'hot',
    total: 1_000_000_000,
    reserved: id,
    sold: 0,
    available: 1_000_000_000 - id,
    version: id,
    revision: id,
  };
  return `event: stock\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
}

function broadcast(rate: number, durationMs: number): Promise<[number, number][]> {
  const commitTimes: [number, number][] = [];
  const start = performance.now();
  const total = Math.floor((rate * durationMs) / 1000);
  let next = 1;
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * rate) / 1000) + 1);
      if (next <= due) {
        const at = clockMs();
        let text = '';
        for (; next <= due; next++) {
          text += frame(next);
          commitTimes.push([next, at]);
        }
        const bytes = Buffer.from(text);
        for (const socket of sockets) socket.write(bytes);
      }
      if (next > total) resolve(commitTimes);
      else setTimeout(tick, Math.max(0, start + ((next - 1) * 1000) / rate - performance.now()));
    };
    tick();
  });
}

process.on('message', (message: { type: string; rate: number; durationMs: number }) => {
  if (message.type === 'start') {
    broadcast(message.rate, message.durationMs).then((commitTimes) => process.send!({ type: 'done', commitTimes }));
  } else if (message.type === 'stop') {
    for (const socket of sockets) socket.destroy();
    server.close(() => process.exit(0));
  }
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({
    type: 'ready',
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
  });
});
