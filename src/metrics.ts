// Prometheus instruments, one registry per server so tests can run several.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Operation, OperationResult } from './engine/operations.ts';
import type { BackendBreaker, BreakerState } from './store/backend-breaker.ts';
import type { WatchHub } from './watch/hub.ts';
import type { DropReason } from './watch/sse.ts';

/** Latency buckets in seconds: sub-millisecond fsyncs up to multi-second stalls. */
const latencyBucketsSeconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const batchSizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequestDuration = new Histogram({
    name: 'hotstock_http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: latencyBucketsSeconds,
    registers: [this.registry],
  });
  readonly reservations = new Counter({
    name: 'hotstock_reservations_total',
    help: 'Reservation outcomes: created, replayed, or the rejection code',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'hotstock_requests_shed_total',
    help: 'Requests answered 503 overloaded before any work, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'hotstock_requests_rate_limited_total',
    help: 'Requests answered 429 rate_limited, by reason (client_quota, user_attempts)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly transitions = new Counter({
    name: 'hotstock_order_transitions_total',
    help: 'Order transitions by action and outcome',
    labelNames: ['action', 'result'] as const,
    registers: [this.registry],
  });
  readonly commitDuration = new Histogram({
    name: 'hotstock_store_commit_duration_seconds',
    help: 'Time from handing a batch to the store to its durable commit',
    buckets: latencyBucketsSeconds,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'hotstock_batch_operations',
    help: 'Operations decided and committed together in one SKU batch',
    buckets: batchSizeBuckets,
    registers: [this.registry],
  });
  readonly storeFailures = new Counter({
    name: 'hotstock_store_failures_total',
    help: 'Commits the store refused with an error (not version conflicts)',
    registers: [this.registry],
  });
  private queueDepthSource: () => number = () => 0;
  readonly queueDepth: Gauge;
  readonly expiries = new Counter({
    name: 'hotstock_reservations_expired_total',
    help: 'Reservations released by the sweeper because they were not paid in time',
    registers: [this.registry],
  });

  private watchSource: WatchHub | undefined;
  readonly watchSubscribers: Gauge;
  readonly watchBufferedBytes: Gauge;
  readonly watchEventsSent: Counter;
  readonly watchEventsCoalesced: Counter;
  readonly watchDropped: Counter<'reason'>;

  constructor() {
    const metrics = this;
    // Watch figures are kept by the hub as plain numbers (its hot loop touches no instrument) and read on scrape.
    let sentSeen = 0;
    let coalescedSeen = 0;
    const droppedSeen: Record<DropReason, number> = { lagging: 0, stalled: 0, shutdown: 0 };
    this.watchSubscribers = new Gauge({
      name: 'hotstock_watch_subscribers',
      help: 'Stock watchers (SSE streams) connected now',
      registers: [this.registry],
      collect() {
        this.set(metrics.watchSource?.subscriberCount ?? 0);
      },
    });
    this.watchBufferedBytes = new Gauge({
      name: 'hotstock_watch_buffered_bytes',
      help: 'Bytes written to watcher sockets that the kernel has not taken yet',
      registers: [this.registry],
      collect() {
        this.set(metrics.watchSource?.bufferedBytes() ?? 0);
      },
    });
    this.watchEventsSent = new Counter({
      name: 'hotstock_watch_events_sent_total',
      help: 'Events written to watchers, counted once per watcher',
      registers: [this.registry],
      collect() {
        const now = metrics.watchSource?.stats.eventsSent ?? 0;
        this.inc(now - sentSeen);
        sentSeen = now;
      },
    });
    this.watchEventsCoalesced = new Counter({
      name: 'hotstock_watch_events_coalesced_total',
      help: 'Events a lagging watcher never got because a later state of the same SKU replaced them',
      registers: [this.registry],
      collect() {
        const now = metrics.watchSource?.stats.eventsCoalesced ?? 0;
        this.inc(now - coalescedSeen);
        coalescedSeen = now;
      },
    });
    this.watchDropped = new Counter({
      name: 'hotstock_watch_subscribers_dropped_total',
      help: 'Watchers the server disconnected, by reason (lagging, stalled, shutdown)',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect() {
        for (const reason of Object.keys(droppedSeen) as DropReason[]) {
          const now = metrics.watchSource?.stats.dropped[reason] ?? 0;
          this.inc({ reason }, now - droppedSeen[reason]);
          droppedSeen[reason] = now;
        }
      },
    });
    this.queueDepth = new Gauge({
      name: 'hotstock_engine_queue_depth',
      help: 'Operations waiting in SKU queues',
      registers: [this.registry],
      collect() {
        this.set(metrics.queueDepthSource());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'hotstock_' });
  }

  /** Queue depth is read when Prometheus scrapes, not tracked on every enqueue. */
  watchQueueDepth(source: () => number): void {
    this.queueDepthSource = source;
  }

  followWatch(hub: WatchHub): void {
    this.watchSource = hub;
  }

  batchCommitted(batchSize: number, commitMs: number): void {
    this.batchSize.observe(batchSize);
    this.commitDuration.observe(commitMs / 1000);
  }

  operationDecided(op: Operation, result: OperationResult): void {
    const outcome = result.ok ? (result.replayed ? 'replayed' : 'ok') : result.code;
    if (op.kind === 'reserve') this.reservations.inc({ result: outcome === 'ok' ? 'created' : outcome });
    else if (op.kind === 'transition') this.transitions.inc({ action: op.action, result: outcome });
    else if (op.kind === 'expire' && result.ok) this.expiries.inc();
  }

  storeFailed(): void {
    this.storeFailures.inc();
  }

  readonly breakerState = new Gauge({
    name: 'hotstock_backend_breaker_state',
    help: 'Circuit breaker around the storage backend: 1 on the current state (closed, open, half-open, isolated)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly breakerOpened = new Counter({
    name: 'hotstock_backend_breaker_opened_total',
    help: 'Times the circuit breaker around the storage backend opened',
    registers: [this.registry],
  });
  readonly feedGaps = new Counter({
    name: 'hotstock_change_feed_gaps_total',
    help: 'Times the change feed lost commits (etcd compaction) and the engine re-warmed every SKU',
    registers: [this.registry],
  });

  /** Follows a breaker's state; every state is exported so a dashboard can plot each. */
  watchBreaker(breaker: BackendBreaker): void {
    const show = (current: BreakerState) => {
      for (const state of breakerStates) this.breakerState.set({ state }, state === current ? 1 : 0);
    };
    show(breaker.state);
    breaker.onStateChange((state) => {
      if (state === 'open') this.breakerOpened.inc();
      show(state);
    });
  }
}

const breakerStates: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];
