// Flags and their environment twins -> one validated, frozen configuration.
// Every flag `--some-flag` has the twin `HOTSTOCK_SOME_FLAG`; a flag wins over
// its twin; a bad value stops the process at start with a message naming the flag.
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  apiKeyLengthMin,
  apiKeysMax,
  breakerConsecutiveFailuresDefault,
  breakerFailureRateDefault,
  breakerHalfOpenAfterMsDefault,
  breakerHalfOpenAfterMsMax,
  breakerHalfOpenAfterMsMin,
  etcdEndpointsMax,
  etcdKeyPrefixBytesMax,
  etcdMaxTxnOpsDefault,
  etcdMaxTxnOpsMax,
  etcdMaxTxnOpsMin,
  etcdQuotaBytesDefault,
  idempotencyTtlMsDefault,
  idempotencyTtlMsMax,
  idempotencyTtlMsMin,
  reservationTtlMsDefault,
  reservationTtlMsMax,
  reservationTtlMsMin,
  shedEventLoopLagMsDefault,
  shedQueueWaitMsDefault,
  shedThresholdMsMax,
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

export interface EtcdConfig {
  endpoints: readonly string[];
  /** Namespace of every hotstock key in the cluster. */
  prefix: string;
  /** Refuse to start unless the cluster has exactly this many members (undefined: any). */
  expectMembers: number | undefined;
  /** The cluster's --max-txn-ops. */
  maxTxnOps: number;
  /** The cluster's --quota-backend-bytes, for the size report and warning. */
  quotaBytes: number;
  tls: { caFile: string; certFile?: string; keyFile?: string } | undefined;
}

export interface BreakerConfig {
  consecutiveFailures: number;
  failureRate: number;
  halfOpenAfterMs: number;
}

export interface ServeConfig {
  store: 'lmdb' | 'etcd';
  dataDir: string;
  /** Set when `store` is etcd. */
  etcd: EtcdConfig | undefined;
  breaker: BreakerConfig;
  host: string;
  port: number;
  apiKeys: ReadonlyMap<string, Role>;
  reservationTtlMs: number;
  idempotencyTtlMs: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  shedQueueWaitMs: number;
  shedEventLoopLagMs: number;
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

function ratio(flag: string): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0 || parsed > 1) {
      throw new InvalidArgumentError(`--${flag} must be a number above 0 and at most 1, got "${value}"`);
    }
    return parsed;
  };
}

/** etcd client URLs: http(s)://host:port, comma-separated. */
function endpointList(value: string): string[] {
  const list = value
    .split(',')
    .map((endpoint) => endpoint.trim())
    .filter((endpoint) => endpoint.length > 0);
  if (list.length === 0 || list.length > etcdEndpointsMax) {
    throw new InvalidArgumentError(`--etcd-endpoints must list 1 to ${etcdEndpointsMax} URLs, got "${value}"`);
  }
  for (const endpoint of list) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new InvalidArgumentError(`--etcd-endpoints: "${endpoint}" is not a URL like http://127.0.0.1:2379`);
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.port === '' || url.pathname !== '/') {
      throw new InvalidArgumentError(`--etcd-endpoints: "${endpoint}" must be http(s)://host:port`);
    }
  }
  if (new Set(list).size !== list.length) throw new InvalidArgumentError('--etcd-endpoints lists an endpoint twice');
  return list;
}

function keyPrefix(value: string): string {
  const bytes = Buffer.byteLength(value);
  if (bytes === 0 || bytes > etcdKeyPrefixBytesMax || !/^[\x21-\x7e]+$/.test(value)) {
    throw new InvalidArgumentError(
      `--etcd-prefix must be 1 to ${etcdKeyPrefixBytesMax} printable ASCII characters, got "${value}"`,
    );
  }
  return value;
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
      option(
        'shed-queue-wait-ms',
        '503 new requests for a SKU once its oldest waiting one has waited this long (0 = never)',
      )
        .argParser(integer('shed-queue-wait-ms', 0, shedThresholdMsMax))
        .default(shedQueueWaitMsDefault),
    )
    .addOption(
      option('shed-event-loop-lag-ms', '503 mutations while the median event-loop lag is above this (0 = never)')
        .argParser(integer('shed-event-loop-lag-ms', 0, shedThresholdMsMax))
        .default(shedEventLoopLagMsDefault),
    )
    .addOption(
      option('log-level', 'pino log level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .addOption(
      option('etcd-endpoints', 'etcd client URLs, comma-separated (with --store etcd)').argParser(endpointList),
    )
    .addOption(
      option('etcd-prefix', 'namespace of every hotstock key in etcd, so deployments can share a cluster')
        .argParser(keyPrefix)
        .default('hotstock/'),
    )
    .addOption(
      option('etcd-expect-members', 'refuse to start unless the etcd cluster has exactly this many members').argParser(
        integer('etcd-expect-members', 1, 99),
      ),
    )
    .addOption(
      option('etcd-max-txn-ops', "the cluster's --max-txn-ops (ops per transaction)")
        .argParser(integer('etcd-max-txn-ops', etcdMaxTxnOpsMin, etcdMaxTxnOpsMax))
        .default(etcdMaxTxnOpsDefault),
    )
    .addOption(
      option('etcd-quota-bytes', "the cluster's --quota-backend-bytes, to report DB size against")
        .argParser(integer('etcd-quota-bytes', 1024 * 1024, 64 * 1024 * 1024 * 1024))
        .default(etcdQuotaBytesDefault),
    )
    .addOption(option('etcd-ca', 'CA certificate (PEM) for TLS to etcd'))
    .addOption(option('etcd-cert', 'client certificate (PEM) for TLS to etcd'))
    .addOption(option('etcd-key', 'client private key (PEM) for TLS to etcd'))
    .addOption(
      option('breaker-failures', 'consecutive failed etcd calls that open the circuit breaker')
        .argParser(integer('breaker-failures', 1, 1_000))
        .default(breakerConsecutiveFailuresDefault),
    )
    .addOption(
      option('breaker-failure-rate', 'share of failed etcd calls over 10 s that opens the circuit breaker')
        .argParser(ratio('breaker-failure-rate'))
        .default(breakerFailureRateDefault),
    )
    .addOption(
      option('breaker-half-open-ms', 'how long the open breaker waits before letting one probe through')
        .argParser(integer('breaker-half-open-ms', breakerHalfOpenAfterMsMin, breakerHalfOpenAfterMsMax))
        .default(breakerHalfOpenAfterMsDefault),
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
  shedQueueWaitMs: number;
  shedEventLoopLagMs: number;
  logLevel: string;
  demo?: boolean;
  etcdEndpoints?: string[];
  etcdPrefix?: string;
  etcdExpectMembers?: number;
  etcdMaxTxnOps?: number;
  etcdQuotaBytes?: number;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  breakerFailures?: number;
  breakerFailureRate?: number;
  breakerHalfOpenMs?: number;
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

function readable(flag: string, path: string): string {
  try {
    readFileSync(path);
  } catch (error) {
    throw new InvalidArgumentError(`--${flag} ${path}: ${(error as Error).message}`);
  }
  return path;
}

function etcdConfig(raw: RawServeOptions): EtcdConfig | undefined {
  const etcdOnly = ['etcdCa', 'etcdCert', 'etcdKey', 'etcdExpectMembers'] as const;
  if (raw.store !== 'etcd') {
    if (raw.etcdEndpoints !== undefined || etcdOnly.some((name) => raw[name] !== undefined)) {
      throw new InvalidArgumentError('--etcd-* flags need --store etcd');
    }
    return undefined;
  }
  if (raw.etcdEndpoints === undefined) throw new InvalidArgumentError('--store etcd needs --etcd-endpoints');
  if ((raw.etcdCert === undefined) !== (raw.etcdKey === undefined)) {
    throw new InvalidArgumentError('--etcd-cert and --etcd-key go together');
  }
  if (raw.etcdCert !== undefined && raw.etcdCa === undefined) {
    throw new InvalidArgumentError('--etcd-cert needs --etcd-ca (TLS to etcd)');
  }
  const https = raw.etcdEndpoints.filter((endpoint) => endpoint.startsWith('https:')).length;
  if (https !== 0 && https !== raw.etcdEndpoints.length) {
    throw new InvalidArgumentError('--etcd-endpoints mixes http and https');
  }
  if (https > 0 && raw.etcdCa === undefined) throw new InvalidArgumentError('https --etcd-endpoints need --etcd-ca');
  if (https === 0 && raw.etcdCa !== undefined) throw new InvalidArgumentError('--etcd-ca needs https --etcd-endpoints');
  return {
    endpoints: raw.etcdEndpoints,
    prefix: raw.etcdPrefix ?? 'hotstock/',
    expectMembers: raw.etcdExpectMembers,
    maxTxnOps: raw.etcdMaxTxnOps ?? etcdMaxTxnOpsDefault,
    quotaBytes: raw.etcdQuotaBytes ?? etcdQuotaBytesDefault,
    tls:
      raw.etcdCa === undefined
        ? undefined
        : {
            caFile: readable('etcd-ca', raw.etcdCa),
            ...(raw.etcdCert ? { certFile: readable('etcd-cert', raw.etcdCert) } : {}),
            ...(raw.etcdKey ? { keyFile: readable('etcd-key', raw.etcdKey) } : {}),
          },
  };
}

export function serveConfig(raw: RawServeOptions): Readonly<ServeConfig> {
  return Object.freeze({
    store: raw.store,
    dataDir: raw.dataDir,
    etcd: etcdConfig(raw),
    breaker: {
      consecutiveFailures: raw.breakerFailures ?? breakerConsecutiveFailuresDefault,
      failureRate: raw.breakerFailureRate ?? breakerFailureRateDefault,
      halfOpenAfterMs: raw.breakerHalfOpenMs ?? breakerHalfOpenAfterMsDefault,
    },
    host: raw.host,
    port: raw.port,
    apiKeys: apiKeys(raw),
    reservationTtlMs: raw.reservationTtlMs,
    idempotencyTtlMs: raw.idempotencyTtlMs,
    sweepIntervalMs: raw.sweepIntervalMs,
    shutdownGraceMs: raw.shutdownGraceMs,
    shedQueueWaitMs: raw.shedQueueWaitMs,
    shedEventLoopLagMs: raw.shedEventLoopLagMs,
    logLevel: raw.logLevel,
    demo: raw.demo ?? false,
    watchSubscribersMax: raw.watchSubscribersMax ?? watchSubscribersMaxDefault,
    watchHeartbeatIntervalMs: raw.watchHeartbeatIntervalMs ?? watchHeartbeatIntervalMsDefault,
    watchPublic: raw.watchPublic ?? false,
  });
}
