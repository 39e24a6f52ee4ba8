// Sheds mutations while the event loop is behind. When the process cannot
// keep up with reading its sockets, every accepted request only adds latency
// for all the others; answering 503 `overloaded` (with Retry-After) before
// parsing or deciding anything keeps the accepted ones fast and tells clients
// when to come back. Reads and operations endpoints are never shed.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { eventLoopLagWindowMs } from '../constants.ts';

/** The histogram's sampling resolution; finer costs timer wake-ups for nothing. */
const lagResolutionMs = 10;

export class LoadShedder {
  private readonly histogram = monitorEventLoopDelay({ resolution: lagResolutionMs });
  private timer: NodeJS.Timeout | undefined;
  private lagMs = 0;
  private readonly lagMaxMs: number;
  private readonly onShedChange: (shedding: boolean, lagMs: number) => void;

  /** `lagMaxMs` 0 never sheds (the lag is still measured). */
  constructor(lagMaxMs: number, onShedChange: (shedding: boolean, lagMs: number) => void = () => {}) {
    this.lagMaxMs = lagMaxMs;
    this.onShedChange = onShedChange;
  }

  /** Median event-loop lag over the last window, in milliseconds. */
  get lastLagMs(): number {
    return this.lagMs;
  }

  get shedding(): boolean {
    return this.lagMaxMs > 0 && this.lagMs > this.lagMaxMs;
  }

  start(): void {
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), eventLoopLagWindowMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private sample(): void {
    const wasShedding = this.shedding;
    // The histogram records each timer's total delay; the lag is what exceeds the resolution.
    const delayMs = this.histogram.count > 0 ? this.histogram.percentile(50) / 1e6 : 0;
    this.lagMs = Math.max(0, delayMs - lagResolutionMs);
    this.histogram.reset();
    if (this.shedding !== wasShedding) this.onShedChange(this.shedding, this.lagMs);
  }
}
