// Load helpers for crash, race and shutdown tests: bounded HTTP calls that
// tell network failures apart from answers, retries that reuse the same
// Idempotency-Key, a seeded random source (so a failing run can be replayed
// with HOTSTOCK_TEST_SEED), and helpers to run many workers at once. Reading
// SKUs and listings goes through test/support/api-helpers.ts.
import { assertConforms, targetOf } from './conformance.ts';
import { clientKey } from './service.ts';

/** Longest any single HTTP call may take before it counts as a network failure. */
export const callTimeoutMs = 10_000;

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  /** The response headers (Retry-After, Idempotent-Replayed, …). */
  headers?: Headers;
}

/** Thrown when no HTTP answer arrived: refused, reset, timed out. */
export class NetworkFailure extends Error {
  override readonly cause: unknown;
  constructor(cause: unknown) {
    super(`network failure: ${(cause as Error)?.message ?? String(cause)}`);
    this.cause = cause;
  }
}

export interface CallOptions {
  body?: unknown;
  idempotencyKey?: string;
  key?: string;
  timeoutMs?: number;
}

/**
 * One HTTP call; an answer of any status resolves (once checked against the
 * server's OpenAPI document), a missing answer throws NetworkFailure.
 */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.key ?? clientKey}` };
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  let text: string;
  let status: number;
  let responseHeaders: Headers;
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? callTimeoutMs),
    });
    status = response.status;
    responseHeaders = response.headers;
    text = await response.text();
  } catch (error) {
    throw new NetworkFailure(error);
  }
  await assertConforms(base, {
    method,
    target: targetOf(base, path),
    status,
    header: (name) => responseHeaders.get(name) ?? undefined,
    text,
  });
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status, body: parsed as T, headers: responseHeaders };
}

export interface RetryOptions {
  /** Attempts in total, first one included. */
  attemptsMax: number;
  /** Pause between attempts (doubles each time, capped at 8x). */
  backoffMs: number;
  /** Checked before every attempt; true stops retrying (the answer stays unknown). */
  stop?: () => boolean;
}

export interface RetryOutcome<T> {
  /** The final answer, or undefined if none arrived (network failures until stop or attempts ran out). */
  answer: Answer<T> | undefined;
  attempts: number;
  networkFailures: number;
  serverErrors: number;
}

/**
 * Sends the same request (same Idempotency-Key, same body) until it gets an
 * answer that is not 5xx, the attempts run out, or `stop` says so.
 */
export async function withRetry<T>(send: () => Promise<Answer<T>>, options: RetryOptions): Promise<RetryOutcome<T>> {
  const outcome: RetryOutcome<T> = { answer: undefined, attempts: 0, networkFailures: 0, serverErrors: 0 };
  for (let attempt = 0; attempt < options.attemptsMax; attempt++) {
    if (options.stop?.()) return outcome;
    if (attempt > 0) await sleep(options.backoffMs * Math.min(8, 2 ** (attempt - 1)));
    if (options.stop?.()) return outcome;
    outcome.attempts++;
    try {
      const answer = await send();
      outcome.answer = answer;
      if (answer.status < 500) return outcome;
      outcome.serverErrors++;
    } catch (error) {
      if (!(error instanceof NetworkFailure)) throw error;
      outcome.answer = undefined;
      outcome.networkFailures++;
    }
  }
  return outcome;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** mulberry32: a small seeded PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed for this run: HOTSTOCK_TEST_SEED if set, else a fresh one (print it so a failure can be replayed). */
export function testSeed(): number {
  const fromEnv = process.env.HOTSTOCK_TEST_SEED;
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv)) return Number(fromEnv);
  return Math.floor(Math.random() * 2 ** 31);
}

export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick from an empty list');
  return items[Math.floor(random() * items.length)]!;
}

/** Runs `count` workers concurrently; all are awaited even if one fails, then the first failure is thrown. */
export async function runWorkers(count: number, worker: (index: number) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => worker(i)));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Runs `tasks` with at most `concurrency` in flight; results in task order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await runWorkers(Math.min(concurrency, items.length), async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  });
  return results;
}
