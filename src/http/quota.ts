// Quotas: a token bucket per API key (--quota-rps / --quota-burst, per-key
// values in --keys-file) and one per (user, SKU) for reservation attempts
// (--user-attempts-per-minute). Past either, 429 `rate_limited` with
// Retry-After and the IETF RateLimit-Policy / RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers). The check runs before the engine
// sees the request, so a refusal changes nothing.
//
// In-house rather than @fastify/rate-limit: that plugin counts fixed windows
// (a client may send twice its limit across a window edge), keys one limit per
// plugin instance (the user bound needs the validated body, the batch needs it
// per item), reads the wall clock, and emits the older RateLimit-Limit /
// -Remaining / -Reset fields. A bucket is a dozen lines; the buckets are
// bounded and per process (in etcd mode every instance has its own).
import { userAttemptBucketsMax } from '../constants.ts';
import type { QuotaRate } from '../credentials.ts';
import { HttpProblem } from '../errors.ts';

export type RateLimitReason = 'client_quota' | 'user_attempts';

interface Bucket {
  tokens: number;
  atMs: number;
  /** Whether the last request took a token. */
  allowed: boolean;
}

export interface BucketVerdict {
  allowed: boolean;
  /** Whole requests left now. */
  remaining: number;
  /** Seconds until the bucket is full again (RateLimit's `t`). */
  fullInSeconds: number;
  /** Seconds until the next request would be allowed (Retry-After), when refused. */
  retryAfterSeconds: number;
}

/**
 * Token buckets by key. A bucket is updated in place: reordering the map on
 * every request (to keep it in least-recently-used order) cost more than the
 * rest of a batch item's admission. Past `bucketsMax`, the oldest created
 * hundredth is dropped at once, so a storm of new keys costs no scan per key;
 * a dropped bucket comes back full, which is also what an idle one becomes.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly bucketsMax: number;
  private readonly nowMs: () => number;

  constructor(bucketsMax: number, nowMs: () => number = () => performance.now()) {
    this.bucketsMax = bucketsMax;
    this.nowMs = nowMs;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, rate: QuotaRate): BucketVerdict {
    return verdictOf(this.spend(key, rate), rate);
  }

  /** Refills the key's bucket and takes a token if there is one (`allowed` says whether it could). */
  spend(key: string, rate: QuotaRate): Bucket {
    const now = this.nowMs();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.bucketsMax) this.dropOldest();
      bucket = { tokens: rate.burst, atMs: now, allowed: false };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(rate.burst, bucket.tokens + ((now - bucket.atMs) / 1000) * rate.rps);
    bucket.atMs = now;
    bucket.allowed = bucket.tokens >= 1;
    if (bucket.allowed) bucket.tokens -= 1;
    return bucket;
  }

  private dropOldest(): void {
    let drop = Math.max(1, Math.floor(this.bucketsMax / 100));
    for (const key of this.buckets.keys()) {
      this.buckets.delete(key);
      if (--drop === 0) return;
    }
  }
}

/** What a bucket says after a request: allowed or not, and the RateLimit figures. */
export function verdictOf(bucket: Bucket, rate: QuotaRate): BucketVerdict {
  return {
    allowed: bucket.allowed,
    remaining: Math.floor(bucket.tokens),
    fullInSeconds: Math.ceil((rate.burst - bucket.tokens) / rate.rps),
    retryAfterSeconds: bucket.allowed ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / rate.rps)),
  };
}

/** The RateLimit-Policy window of a bucket: the seconds it takes to refill from empty. */
function windowSeconds(rate: QuotaRate): number {
  return Math.max(1, Math.ceil(rate.burst / rate.rps));
}

/** RateLimit-Policy and RateLimit for one policy (Structured Field lists of one item). */
export function rateLimitHeaders(policy: RateLimitReason, rate: QuotaRate, verdict: BucketVerdict) {
  return {
    'ratelimit-policy': `"${policy}";q=${rate.burst};w=${windowSeconds(rate)}`,
    ratelimit: `"${policy}";r=${verdict.remaining};t=${verdict.fullInSeconds}`,
  };
}

export function rateLimited(
  reason: RateLimitReason,
  detail: string,
  rate: QuotaRate,
  verdict: BucketVerdict,
): HttpProblem {
  return new HttpProblem(
    'rate_limited',
    detail,
    { reason, retryAfterSeconds: verdict.retryAfterSeconds },
    { 'retry-after': String(verdict.retryAfterSeconds), ...rateLimitHeaders(reason, rate, verdict) },
  );
}

export interface QuotaOptions {
  /** Reservation attempts per user and SKU per minute; 0: no bound. */
  userAttemptsPerMinute: number;
  /** Counts each refusal, by reason. */
  onRefused: (reason: RateLimitReason) => void;
}

export class Quotas {
  private readonly clients = new TokenBuckets(Number.MAX_SAFE_INTEGER);
  private readonly attempts = new TokenBuckets(userAttemptBucketsMax);
  private readonly attemptRate: QuotaRate;
  private readonly options: QuotaOptions;

  constructor(options: QuotaOptions) {
    this.options = options;
    this.attemptRate = { rps: options.userAttemptsPerMinute / 60, burst: options.userAttemptsPerMinute };
  }

  /**
   * One request of an API key: the RateLimit headers to send, or a thrown 429.
   * Buckets are keyed by the key's scope; the number of keys is bounded (apiKeysMax).
   */
  admitClient(scope: string, rate: QuotaRate): Record<string, string> | undefined {
    if (rate.rps === 0) return undefined;
    const verdict = this.clients.take(scope, rate);
    if (!verdict.allowed) {
      this.options.onRefused('client_quota');
      throw rateLimited(
        'client_quota',
        `this API key may send ${rate.rps} requests a second (bursts of ${rate.burst})`,
        rate,
        verdict,
      );
    }
    return rateLimitHeaders('client_quota', rate, verdict);
  }

  /** One reservation attempt of `userId` on `sku`: undefined when allowed, else the 429 to answer. */
  admitAttempt(userId: string, sku: string): HttpProblem | undefined {
    if (this.options.userAttemptsPerMinute === 0) return undefined;
    const bucket = this.attempts.spend(`${sku}\u0000${userId}`, this.attemptRate);
    if (bucket.allowed) return undefined;
    const verdict = verdictOf(bucket, this.attemptRate);
    this.options.onRefused('user_attempts');
    return rateLimited(
      'user_attempts',
      `user ${userId} may attempt ${this.options.userAttemptsPerMinute} reservations of ${sku} a minute`,
      this.attemptRate,
      verdict,
    );
  }
}
