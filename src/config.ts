// Flags and their environment twins -> one validated, frozen configuration.
// Every flag `--some-flag` has the twin `HOTSTOCK_SOME_FLAG`; a flag wins over
// its twin; a bad value stops the process at start with a message naming the flag.
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  apiKeyLengthMin,
  apiKeysMax,
  idempotencyTtlMsDefault,
  idempotencyTtlMsMax,
  idempotencyTtlMsMin,
  reservationTtlMsDefault,
  reservationTtlMsMax,
  reservationTtlMsMin,
  shutdownGraceMsDefault,
  sweepIntervalMsDefault,
  sweepIntervalMsMax,
  sweepIntervalMsMin,
  watchHeartbeatIntervalMsDefault,
  watchHeartbeatIntervalMsMax,
  watchHeartbeatIntervalMsMin,
  watchSubscribersMaxDefault,
  watchSubscribersMaxMax,
} from './constants.ts';

export type Role = 'admin' | 'client';

export interface ServeConfig {
  store: 'lmdb' | 'etcd';
  dataDir: string;
  host: string;
  port: number;
  apiKeys: ReadonlyMap<string, Role>;
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  logLevel: string;
  demo: boolean;
  /** Stock watchers (SSE) allowed at once; past it, 503 watch_full. */
  watchSubscribersMax: number;
  watchHeartbeatIntervalMs: number;
  /** GET /v1/watch needs no API key (stock levels are public, e.g. for a storefront's browser EventSource). */
  watchPublic: boolean;
}

/** Keys the demo start uses when none are configured; printed at start, never for production. */
export const demoKeys = { admin: 'demo-admin-key', client: 'demo-client-key' } as const;

function envName(flag: string): string {
  return `HOTSTOCK_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function integer(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`--${flag} must be an integer from ${min} to ${max}, got "${value}"`);
    }
    return parsed;
  };
}

function keyList(flag: string): (value: string) => string[] {
  return (value) => {
    const list = value
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key.length > 0);
    for (const key of list) {
      if (key.length < apiKeyLengthMin || !/^[\x21-\x7e]+$/.test(key)) {
        throw new InvalidArgumentError(
          `--${flag}: keys must be at least ${apiKeyLengthMin} printable ASCII characters`,
        );
      }
    }
    return list;
  };
}

function option(flag: string, description: string): Option {
  return new Option(`--${flag} <value>`, description).env(envName(flag));
}

/** Adds every `serve` flag, each with its environment twin. */
export function addServeOptions(command: Command): Command {
  return command
    .addOption(option('store', 'storage backend').choices(['lmdb', 'etcd']).default('lmdb'))
    .addOption(option('data-dir', 'directory of the embedded LMDB store').default('./data'))
    .addOption(option('host', 'address to listen on').default('127.0.0.1'))
    .addOption(
      option('port', 'TCP port to listen on (0 = any free port)')
        .argParser(integer('port', 0, 65535))
        .default(8080),
    )
    .addOption(option('admin-keys', 'comma-separated API keys with the admin role').argParser(keyList('admin-keys')))
    .addOption(option('client-keys', 'comma-separated API keys with the client role').argParser(keyList('client-keys')))
    .addOption(option('keys-file', 'JSON file {"admin": [keys], "client": [keys]} read at start'))
    .addOption(
      option('reservation-ttl-ms', 'how long an unpaid reservation holds stock')
        .argParser(integer('reservation-ttl-ms', reservationTtlMsMin, reservationTtlMsMax))
        .default(reservationTtlMsDefault),
    )
    .addOption(
      option('idempotency-ttl-ms', 'how long an Idempotency-Key answer is kept for replay')
        .argParser(integer('idempotency-ttl-ms', idempotencyTtlMsMin, idempotencyTtlMsMax))
        .default(idempotencyTtlMsDefault),
    )
    .addOption(
      option('sweep-interval-ms', 'how often lapsed reservations and idempotency records are swept')
        .argParser(integer('sweep-interval-ms', sweepIntervalMsMin, sweepIntervalMsMax))
        .default(sweepIntervalMsDefault),
    )
    .addOption(
      option('shutdown-grace-ms', 'time in-flight work gets on SIGTERM before the store closes')
        .argParser(integer('shutdown-grace-ms', 0, 600_000))
        .default(shutdownGraceMsDefault),
    )
    .addOption(
      option('log-level', 'pino log level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .addOption(
      option('watch-subscribers-max', 'stock watchers (SSE streams) allowed at once; each holds a file descriptor')
        .argParser(integer('watch-subscribers-max', 1, watchSubscribersMaxMax))
        .default(watchSubscribersMaxDefault),
    )
    .addOption(
      option('watch-heartbeat-interval-ms', 'how often every stock watcher gets an SSE heartbeat comment')
        .argParser(integer('watch-heartbeat-interval-ms', watchHeartbeatIntervalMsMin, watchHeartbeatIntervalMsMax))
        .default(watchHeartbeatIntervalMsDefault),
    )
    .addOption(
      new Option('--watch-public', 'serve GET /v1/watch without an API key (stock levels become public)').env(
        'HOTSTOCK_WATCH_PUBLIC',
      ),
    )
    .addOption(
      new Option('--demo', 'seed a demo catalog into an empty store and use demo keys if none are set').env(
        'HOTSTOCK_DEMO',
      ),
    );
}

interface RawServeOptions {
  store: 'lmdb' | 'etcd';
  dataDir: string;
  host: string;
  port: number;
  adminKeys?: string[];
  clientKeys?: string[];
  keysFile?: string;
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  logLevel: string;
  demo?: boolean;
  watchSubscribersMax?: number;
  watchHeartbeatIntervalMs?: number;
  watchPublic?: boolean;
}

function keysFromFile(path: string): { admin: string[]; client: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InvalidArgumentError(`--keys-file ${path}: ${(error as Error).message}`);
  }
  const file = parsed as { admin?: unknown; client?: unknown };
  const list = (role: 'admin' | 'client') => {
    const value = file[role] ?? [];
    if (!Array.isArray(value) || !value.every((key) => typeof key === 'string')) {
      throw new InvalidArgumentError(`--keys-file ${path}: "${role}" must be an array of strings`);
    }
    return keyList('keys-file')(value.join(','));
  };
  return { admin: list('admin'), client: list('client') };
}

function apiKeys(raw: RawServeOptions): Map<string, Role> {
  const fromFile = raw.keysFile ? keysFromFile(raw.keysFile) : { admin: [], client: [] };
  const admin = [...(raw.adminKeys ?? []), ...fromFile.admin];
  const client = [...(raw.clientKeys ?? []), ...fromFile.client];
  if (admin.length === 0 && client.length === 0 && raw.demo) {
    admin.push(demoKeys.admin);
    client.push(demoKeys.client);
  }
  if (admin.length === 0 && client.length === 0) {
    throw new InvalidArgumentError(
      'no API keys: set --admin-keys / --client-keys or --keys-file (or --demo for demo keys)',
    );
  }
  const keys = new Map<string, Role>();
  for (const key of client) keys.set(key, 'client');
  for (const key of admin) keys.set(key, 'admin');
  if (keys.size > apiKeysMax) throw new InvalidArgumentError(`at most ${apiKeysMax} API keys`);
  return keys;
}

export function serveConfig(raw: RawServeOptions): Readonly<ServeConfig> {
  if (raw.store === 'etcd') {
    throw new InvalidArgumentError('--store etcd: the etcd backend is not available in this version; use --store lmdb');
  }
  return Object.freeze({
    store: raw.store,
    dataDir: raw.dataDir,
    host: raw.host,
    port: raw.port,
    apiKeys: apiKeys(raw),
    reservationTtlMs: raw.reservationTtlMs,
    idempotencyTtlMs: raw.idempotencyTtlMs,
    sweepIntervalMs: raw.sweepIntervalMs,
    shutdownGraceMs: raw.shutdownGraceMs,
    logLevel: raw.logLevel,
    demo: raw.demo ?? false,
    watchSubscribersMax: raw.watchSubscribersMax ?? watchSubscribersMaxDefault,
    watchHeartbeatIntervalMs: raw.watchHeartbeatIntervalMs ?? watchHeartbeatIntervalMsDefault,
    watchPublic: raw.watchPublic ?? false,
  });
}
