// The circuit breaker around a remote store (etcd). After a run of
// consecutive failures, or a high failure rate over a sliding window, it opens:
// every call then fails at once with `backend_unavailable` instead of waiting
// for its own timeout, so a dead cluster costs the client microseconds, not
// seconds, and the engine's queues do not fill with doomed work. After
// `halfOpenAfterMs` one call is let through as a probe; its success closes
// the breaker again, its failure keeps it open.
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type IBreaker,
  isBrokenCircuitError,
  SamplingBreaker,
} from 'cockatiel';
import { breakerMinimumRps, breakerWindowMs } from '../constants.ts';
import { StoreFailure } from './contract.ts';

export interface BreakerOptions {
  consecutiveFailures: number;
  /** 0 < rate <= 1, over `breakerWindowMs`. */
  failureRate: number;
  halfOpenAfterMs: number;
  /** Errors that say nothing about the backend's health (e.g. out of space) do not count. */
  counts?: (error: Error) => boolean;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

const stateNames: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** Opens when either of its breakers would: consecutive failures, or the failure rate. */
class EitherBreaker implements IBreaker {
  private readonly consecutive: ConsecutiveBreaker;
  private readonly sampling: SamplingBreaker;

  constructor(options: BreakerOptions) {
    this.consecutive = new ConsecutiveBreaker(options.consecutiveFailures);
    this.sampling = new SamplingBreaker({
      threshold: options.failureRate,
      duration: breakerWindowMs,
      minimumRps: breakerMinimumRps,
    });
  }

  get state(): unknown {
    return { consecutive: this.consecutive.state, sampling: this.sampling.state };
  }

  set state(value: unknown) {
    const saved = value as { consecutive: number; sampling: unknown };
    this.consecutive.state = saved.consecutive;
    this.sampling.state = saved.sampling;
  }

  success(state: CircuitState): void {
    this.consecutive.success();
    this.sampling.success(state);
  }

  failure(state: CircuitState): boolean {
    const byCount = this.consecutive.failure();
    const byRate = this.sampling.failure(state);
    return byCount || byRate;
  }
}

export class BackendBreaker {
  private readonly policy: CircuitBreakerPolicy;
  private readonly retryAfterSeconds: number;
  private opened = 0;

  constructor(options: BreakerOptions) {
    const counts = options.counts ?? (() => true);
    this.policy = circuitBreaker(
      handleWhen((error) => error instanceof Error && counts(error)),
      {
        halfOpenAfter: options.halfOpenAfterMs,
        breaker: new EitherBreaker(options),
      },
    );
    this.retryAfterSeconds = Math.max(1, Math.ceil(options.halfOpenAfterMs / 1000));
    this.policy.onBreak(() => {
      this.opened++;
    });
  }

  get state(): BreakerState {
    return stateNames[this.policy.state];
  }

  /** Times the breaker has opened since start. */
  get openedCount(): number {
    return this.opened;
  }

  onStateChange(listener: (state: BreakerState) => void): void {
    this.policy.onStateChange((state) => listener(stateNames[state]));
  }

  /** Runs `call` unless the breaker is open; an open breaker is a `backend_unavailable` StoreFailure. */
  async execute<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await this.policy.execute(call);
    } catch (error) {
      if (isBrokenCircuitError(error)) {
        throw new StoreFailure(
          'backend_unavailable',
          'the etcd backend is unavailable (circuit breaker open)',
          this.retryAfterSeconds,
          { cause: error },
        );
      }
      throw error;
    }
  }
}
