// The hotstock server for the watch benchmark: the real service (the same
// startService that `hotstock serve` runs), plus a listener on the store's
// change feed that notes when each commit became durable and known to this
// process: `process.hrtime.bigint()` (CLOCK_MONOTONIC, one clock for every
// process on the machine) in milliseconds. That is the "commit" end of commit-to-delivery; the
// watch clients note the other end with the same clock. Driven over IPC by
// bench/scenarios/watch.ts: {type:'rss'} answers the RSS after a full GC,
// {type:'commits'} answers the commit times, {type:'stop'} shuts down.
// Run with --expose-gc.

import { serveConfig } from '../src/config.ts';
import { shedEventLoopLagMsDefault, shedQueueWaitMsDefault } from '../src/constants.ts';
import { startService } from '../src/service.ts';

/** The machine's monotonic clock (CLOCK_MONOTONIC) in ms: the same clock in every process, unlike performance.now(). */
function clockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

interface Args {
  dataDir: string;
  port: number;
  adminKey: string;
  clientKey: string;
  subscribersMax: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const service = await startService(
  serveConfig({
    store: 'lmdb',
    dataDir: args.dataDir,
    host: '127.0.0.1',
    port: args.port,
    adminKeys: args.adminKey,
    clientKeys: args.clientKey,
    reservationTtlMs: 15 * 60 * 1000,
    idempotencyTtlMs: 24 * 60 * 60 * 1000,
    sweepIntervalMs: 1_000,
    shutdownGraceMs: 10_000,
    shedQueueWaitMs: shedQueueWaitMsDefault,
    shedEventLoopLagMs: shedEventLoopLagMsDefault,
    logLevel: 'warn',
    watchSubscribersMax: args.subscribersMax,
  }),
);

/** revision -> commit time (ms); only commits that wrote a SKU record become stock events. */
const commitTimes: [number, number][] = [];
service.store.subscribe('sku/', (change) => {
  if (change.writes.some((write) => write.type === 'put')) commitTimes.push([change.revision, clockMs()]);
});

/** Broadcast pass ends: [revision carried through, time (ms)]. */
const passEnds: [number, number][] = [];
service.watch.observePasses((through) => passEnds.push([through, clockMs()]));

function rssAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage.rss();
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'rss')
    process.send!({ type: 'rss', rssBytes: rssAfterGc(), watchers: service.watch.subscriberCount });
  else if (message.type === 'commits') {
    process.send!({
      type: 'commits',
      commitTimes: commitTimes.splice(0),
      passEnds: passEnds.splice(0),
      hub: { ...service.watch.stats },
    });
  } else if (message.type === 'stop') {
    service.close().then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', url: service.url });
