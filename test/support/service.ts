// Starting real hotstock services for tests: in-process (fast, for HTTP
// behaviour) or as a child process (for crash and CLI tests). Both listen on
// a free loopback port and use a fresh temporary data directory.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RawServeOptions, type Role, type ServeConfig, serveConfig } from '../../src/config.ts';
import { idempotencyTtlMsDefault, reservationTtlMsDefault } from '../../src/constants.ts';
import { type Service, startService } from '../../src/service.ts';
import { assertConforms, forgetOpenApi, openApiOf, targetOf } from './conformance.ts';

export const adminKey = 'test-admin-key';
export const clientKey = 'test-client-key';
export const otherClientKey = 'test-client-key-2';
/** A server that has not announced its address by then is reported as failed (it is usually much faster). */
const serverStartTimeoutMs = 30_000;
export const mainScript = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export function tempDataDir(label = 'hotstock'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestService {
  url: string;
  service: Service;
  dataDir: string;
  /** Stops the service; the data directory stays until `remove`. */
  stop: () => Promise<void>;
  remove: () => void;
}

/** An in-process service on a fresh data directory; `raw` sets flags (as parsed) before the config is built. */
export async function startTestService(
  overrides: Partial<ServeConfig> = {},
  raw: Partial<RawServeOptions> = {},
): Promise<TestService> {
  const { dir, remove } = tempDataDir();
  const config: ServeConfig = {
    ...serveConfig({
      store: 'lmdb',
      dataDir: dir,
      host: '127.0.0.1',
      port: 0,
      adminKeys: adminKey,
      clientKeys: `${clientKey},${otherClientKey}`,
      reservationTtlMs: reservationTtlMsDefault,
      idempotencyTtlMs: idempotencyTtlMsDefault,
      sweepIntervalMs: 1_000,
      shutdownGraceMs: 5_000,
      // Tests share a busy machine: shedding is off unless a test is about shedding.
      shedQueueWaitMs: 0,
      shedEventLoopLagMs: 0,
      logLevel: 'silent',
      ...raw,
    }),
    ...overrides,
  };
  const service = await startService(config);
  forgetOpenApi(service.url);
  await openApiOf(service.url);
  return { url: service.url, service, dataDir: config.dataDir, stop: () => service.close(), remove };
}

/**
 * One in-process service for a test file: started before its tests, stopped
 * and removed after them. Read `url` and `current` inside the tests; a later
 * `before` hook awaits `ready` (node:test runs root-level hooks concurrently).
 */
export function useTestService(
  overrides: Partial<ServeConfig> = {},
  raw: Partial<RawServeOptions> = {},
): { readonly url: string; readonly current: TestService; readonly ready: Promise<TestService> } {
  let started: TestService | undefined;
  let resolveReady: (service: TestService) => void = () => {};
  const ready = new Promise<TestService>((resolve) => {
    resolveReady = resolve;
  });
  before(async () => {
    started = await startTestService(overrides, raw);
    resolveReady(started);
  });
  after(async () => {
    await started?.stop();
    started?.remove();
  });
  const current = () => {
    assert.ok(started, 'the service runs from before() to after()');
    return started;
  };
  return {
    get url() {
      return current().url;
    },
    get current() {
      return current();
    },
    ready,
  };
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * A small fetch wrapper: JSON in, JSON (or problem+json) out. Every response
 * is checked against the server's OpenAPI document (conformance.ts).
 */
export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: {
    key?: string | null;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    /** Abort (and fail) the call when no answer arrived within this time; unbounded when absent. */
    timeoutMs?: number;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? clientKey : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  const signal = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
  const response = await fetch(`${base}${path}`, { method, headers, body, signal });
  const text = await response.text();
  await assertConforms(base, {
    method,
    target: targetOf(base, path),
    status: response.status,
    header: (name) => response.headers.get(name) ?? undefined,
    text,
  });
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (e.g. /metrics): hand back the text.
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export async function createSku(
  base: string,
  sku: string,
  fields: { initialStock: number; maxPerUser?: number | null; product?: string; size?: string; color?: string } = {
    initialStock: 10,
  },
): Promise<ApiResponse> {
  const response = await api(base, 'PUT', `/v1/skus/${encodeURIComponent(sku)}`, {
    key: adminKey,
    body: {
      product: fields.product ?? 'piggy-shirt',
      size: fields.size ?? 'M',
      color: fields.color ?? 'red',
      priceCents: 1999,
      ...(fields.maxPerUser !== undefined ? { maxPerUser: fields.maxPerUser } : {}),
      initialStock: fields.initialStock,
    },
  });
  if (response.status !== 201) throw new Error(`creating ${sku}: ${response.status} ${JSON.stringify(response.body)}`);
  return response;
}

let idempotencySequence = 0;
export function freshIdempotencyKey(label = 'k'): string {
  idempotencySequence++;
  return `${label}-${process.pid}-${idempotencySequence}-${Math.random().toString(36).slice(2)}`;
}

export function reserve(
  base: string,
  body: { sku: string; qty: number; userId: string },
  idempotencyKey: string = freshIdempotencyKey(),
  key: string = clientKey,
): Promise<ApiResponse> {
  return api(base, 'POST', '/v1/orders', { key, body, headers: { 'idempotency-key': idempotencyKey } });
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | NodeJS.Signals | null>;
  output: () => string;
}

/** Every server child still running, so a test that times out mid-start can still end them all. */
const runningServers = new Set<ChildProcess>();

/** SIGKILLs every `hotstock serve` child this process started that is still running, and waits for them. */
export async function killSpawnedServers(): Promise<void> {
  await Promise.all(
    [...runningServers].map((child) => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      return exited;
    }),
  );
}

/** Runs `hotstock serve` as a real child process and waits until it listens. */
export async function spawnServer(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [
      mainScript,
      'serve',
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--admin-keys',
      adminKey,
      '--client-keys',
      `${clientKey},${otherClientKey}`,
      // Tests share a busy machine: shedding is off unless a test asks for it.
      '--shed-queue-wait-ms',
      '0',
      '--shed-event-loop-lag-ms',
      '0',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  runningServers.add(child);
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => {
      runningServers.delete(child);
      resolve(signal ?? code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (https?:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${output}`)));
    setTimeout(
      () => reject(new Error(`server did not listen within ${serverStartTimeoutMs} ms:\n${output}`)),
      serverStartTimeoutMs,
    ).unref();
  });
  // The document is read now, while the server surely runs: a crash test may kill it before its first check.
  // (An HTTPS test reads it itself, with its certificate authority.)
  forgetOpenApi(url);
  if (url.startsWith('http:')) await openApiOf(url);
  return { url, child, exited, output: () => output };
}

/** Test cleanup: SIGKILLs a server process that is still running and waits until it has ended. */
export async function killIfRunning(server: ServerProcess | undefined): Promise<void> {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
}

/** The flags that put a spawned `hotstock check` (or, with `serveArgs`, `serve`) on an etcd cluster, under its own namespace. */
export function etcdArgs(endpoints: readonly string[], prefix: string, extra: string[] = []): string[] {
  return ['--store', 'etcd', '--etcd-endpoints', endpoints.join(','), '--etcd-prefix', prefix, ...extra];
}

/** The cluster key test instances share (instances on etcd forward writes to each other with it). */
export const clusterKey = 'test-cluster-key-0123456789abcdef-0123';

/** `etcdArgs` for `hotstock serve`, which on etcd also needs the cluster key. */
export function etcdServeArgs(endpoints: readonly string[], prefix: string, extra: string[] = []): string[] {
  return etcdArgs(endpoints, prefix, ['--cluster-key', clusterKey, ...extra]);
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `hotstock <args>` to its end with only the HOTSTOCK_* variables in `env`; its exit code and output. */
export async function runHotstock(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HOTSTOCK_')));
  const child = spawn(process.execPath, [mainScript, ...args], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, stderr };
}

/** Runs `hotstock check` on a data dir (plus any flags, e.g. `etcdArgs`) and returns its exit code and output. */
export function runCheck(dataDir: string, extraArgs: string[] = []): Promise<CommandResult> {
  return runHotstock(['check', '--data-dir', dataDir, ...extraArgs]);
}

export type { Role };
