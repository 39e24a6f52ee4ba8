// Flags and their environment twins -> one validated, frozen configuration.
// Every flag `--some-flag` has the twin `HOTSTOCK_SOME_FLAG`; a flag wins over
// its twin; a bad value stops the process at start with a message naming the
// flag (or the twin). The flags are one table (serveFlags), see cli/flags.ts.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { type Command, InvalidArgumentError } from 'commander';
import { addFlags, endpointList, type Flag, flagLabel, integer, ratio, share } from './cli/flags.ts';
import type { ClusterConfig } from './cluster/cluster.ts';
import { isPeerUrl } from './cluster/view.ts';
import {
  bearerTokenLengthMax,
  breakerConsecutiveFailuresDefault,
  breakerFailureRateDefault,
  breakerHalfOpenAfterMsDefault,
  breakerHalfOpenAfterMsMax,
  breakerHalfOpenAfterMsMin,
  clusterKeyLengthMin,
  clusterKeysMax,
  clusterLeaseTtlSDefault,
  clusterLeaseTtlSMax,
  clusterLeaseTtlSMin,
  cursorSecretLengthMin,
  etcdKeyPrefixBytesMax,
  etcdMaxTxnOpsDefault,
  etcdMaxTxnOpsMax,
  etcdMaxTxnOpsMin,
  etcdQuotaBytesDefault,
  idempotencyTtlMsDefault,
  idempotencyTtlMsMax,
  idempotencyTtlMsMin,
  quotaBurstMax,
  quotaRpsDefault,
  quotaRpsMax,
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
  userAttemptsPerMinuteDefault,
  userAttemptsPerMinuteMax,
  watchHeartbeatIntervalMsDefault,
  watchHeartbeatIntervalMsMax,
  watchHeartbeatIntervalMsMin,
  watchSubscribersMaxDefault,
  watchSubscribersMaxMax,
} from './constants.ts';
import {
  type Credentials,
  CredentialsError,
  isValidKey,
  type KeySources,
  keyRule,
  loadCredentials,
  type QuotaRate,
  quotaOf,
} from './credentials.ts';

export { demoKeys, type Role } from './credentials.ts';

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

/** HTTPS: PEM files, read at start and again on SIGHUP. */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
}

export interface ServeConfig {
  store: 'lmdb' | 'etcd';
  /** The other store, kept a current copy through the outbox (cutover/); SKUs can move to it and back. */
  mirror: 'lmdb' | 'etcd' | undefined;
  /** Share of SKU and order reads also compared with the mirror (shadow reads), 0 to 1. */
  shadowReadRatio: number;
  dataDir: string;
  /** Set when `store` or `mirror` is etcd. */
  etcd: EtcdConfig | undefined;
  /** Set when `store` is etcd and there is no mirror: one writer per SKU across the instances. */
  cluster: ClusterConfig | undefined;
  breaker: BreakerConfig;
  host: string;
  port: number;
  /** Where the API keys come from (re-read on SIGHUP) ... */
  keySources: KeySources;
  /** ... and what they were at start. */
  credentials: Credentials;
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
  /** The quota of an API key whose --keys-file entry names none (rps 0: no quota). */
  quota: QuotaRate;
  /** Reservation attempts per user and SKU per minute (0: no bound). */
  userAttemptsPerMinute: number;
  tls: TlsConfig | undefined;
  /** Seals listing cursors; undefined derives the cursor key from the API keys (see http/cursor.ts). */
  cursorSecret: string | undefined;
}

function keyPrefix(value: string, flag: string): string {
  const bytes = Buffer.byteLength(value);
  if (bytes === 0 || bytes > etcdKeyPrefixBytesMax || !/^[\x21-\x7e]+$/.test(value)) {
    throw new InvalidArgumentError(
      `${flag} must be 1 to ${etcdKeyPrefixBytesMax} printable ASCII characters, got "${value}"`,
    );
  }
  return value;
}

function keyList(value: string, flag: string): string[] {
  const list = value
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
  if (!list.every(isValidKey)) throw new InvalidArgumentError(`${flag}: ${keyRule()}`);
  return list;
}

/** Cluster keys: 1 to clusterKeysMax, comma-separated; a refusal never quotes them. */
function clusterKeyList(value: string, flag: string): string[] {
  const list = value.split(',').map((key) => key.trim());
  const valid = (key: string) =>
    key.length >= clusterKeyLengthMin && key.length <= bearerTokenLengthMax && /^[\x21-\x7e]+$/.test(key);
  if (list.length > clusterKeysMax || !list.every(valid)) {
    throw new InvalidArgumentError(
      `${flag} must be 1 to ${clusterKeysMax} comma-separated keys of at least ${clusterKeyLengthMin} (at most ${bearerTokenLengthMax}) printable ASCII characters each`,
    );
  }
  return list;
}

function peerUrl(value: string, flag: string): string {
  if (!isPeerUrl(value)) {
    throw new InvalidArgumentError(`${flag} must be an http(s) origin such as http://10.0.0.7:8080, got "${value}"`);
  }
  return value;
}

function cursorSecret(value: string, flag: string): string {
  if (value.length < cursorSecretLengthMin || !/^[\x21-\x7e]+$/.test(value)) {
    throw new InvalidArgumentError(`${flag} must be at least ${cursorSecretLengthMin} printable ASCII characters`);
  }
  return value;
}

/** Every `serve` flag; each has its environment twin. */
export const serveFlags: readonly Flag[] = [
  { name: 'store', arg: 'kind', help: 'storage backend', choices: ['lmdb', 'etcd'], default: 'lmdb' },
  {
    name: 'mirror',
    arg: 'kind',
    help: 'the other store, kept a copy of --store through a durable outbox, for moving SKUs between them (one instance: not with --cluster-key)',
    choices: ['lmdb', 'etcd'],
  },
  {
    name: 'shadow-read-ratio',
    arg: 'share',
    help: 'share of SKU and order reads also compared with the mirror, 0 to 1 (X-Canary: shadow asks for one)',
    parse: share,
    default: 0,
  },
  { name: 'data-dir', arg: 'dir', help: 'directory of the embedded LMDB store', default: './data' },
  { name: 'host', arg: 'address', help: 'address to listen on', default: '127.0.0.1' },
  {
    name: 'port',
    arg: 'n',
    help: 'TCP port to listen on (0 = any free port)',
    parse: integer(0, 65535),
    default: 8080,
  },
  // Keys and secrets are checked in serveConfig, not by their option: commander would quote a refused value.
  { name: 'admin-keys', arg: 'keys', help: 'comma-separated API keys with the admin role' },
  { name: 'client-keys', arg: 'keys', help: 'comma-separated API keys with the client role' },
  {
    name: 'keys-file',
    arg: 'file',
    help: 'JSON {"admin": [...], "client": [...]}, entries a key or {"key", "quotaRps", "quotaBurst"}; re-read on SIGHUP',
  },
  {
    name: 'reservation-ttl-ms',
    arg: 'ms',
    help: 'how long an unpaid reservation holds stock',
    parse: integer(reservationTtlMsMin, reservationTtlMsMax),
    default: reservationTtlMsDefault,
  },
  {
    name: 'idempotency-ttl-ms',
    arg: 'ms',
    help: 'how long an Idempotency-Key answer is kept for replay',
    parse: integer(idempotencyTtlMsMin, idempotencyTtlMsMax),
    default: idempotencyTtlMsDefault,
  },
  {
    name: 'sweep-interval-ms',
    arg: 'ms',
    help: 'how often lapsed reservations and idempotency records are swept',
    parse: integer(sweepIntervalMsMin, sweepIntervalMsMax),
    default: sweepIntervalMsDefault,
  },
  {
    name: 'shutdown-grace-ms',
    arg: 'ms',
    help: 'time in-flight work gets on SIGTERM before the store closes',
    parse: integer(0, 600_000),
    default: shutdownGraceMsDefault,
  },
  {
    name: 'shed-queue-wait-ms',
    arg: 'ms',
    help: '503 new requests for a SKU once its oldest waiting one has waited this long (0 = never)',
    parse: integer(0, shedThresholdMsMax),
    default: shedQueueWaitMsDefault,
  },
  {
    name: 'shed-event-loop-lag-ms',
    arg: 'ms',
    help: '503 mutations while the median event-loop lag is above this (0 = never)',
    parse: integer(0, shedThresholdMsMax),
    default: shedEventLoopLagMsDefault,
  },
  {
    name: 'log-level',
    arg: 'level',
    help: 'pino log level',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
  },
  {
    name: 'etcd-endpoints',
    arg: 'urls',
    help: 'etcd client URLs, comma-separated (with --store etcd)',
    parse: endpointList,
  },
  {
    name: 'etcd-prefix',
    arg: 'prefix',
    help: 'namespace of every hotstock key in etcd, so deployments can share a cluster',
    parse: keyPrefix,
    default: 'hotstock/',
  },
  {
    name: 'etcd-expect-members',
    arg: 'n',
    help: 'refuse to start unless the etcd cluster has exactly this many members',
    parse: integer(1, 99),
  },
  {
    name: 'etcd-max-txn-ops',
    arg: 'n',
    help: "the cluster's --max-txn-ops (ops per transaction)",
    parse: integer(etcdMaxTxnOpsMin, etcdMaxTxnOpsMax),
    default: etcdMaxTxnOpsDefault,
  },
  {
    name: 'etcd-quota-bytes',
    arg: 'bytes',
    help: "the cluster's --quota-backend-bytes, to report DB size against",
    parse: integer(1024 * 1024, 64 * 1024 * 1024 * 1024),
    default: etcdQuotaBytesDefault,
  },
  { name: 'etcd-ca', arg: 'file', help: 'CA certificate (PEM) for TLS to etcd' },
  { name: 'etcd-cert', arg: 'file', help: 'client certificate (PEM) for TLS to etcd' },
  { name: 'etcd-key', arg: 'file', help: 'client private key (PEM) for TLS to etcd' },
  {
    name: 'breaker-failures',
    arg: 'n',
    help: 'consecutive failed etcd calls that open the circuit breaker',
    parse: integer(1, 1_000),
    default: breakerConsecutiveFailuresDefault,
  },
  {
    name: 'breaker-failure-rate',
    arg: 'ratio',
    help: 'share of failed etcd calls over 10 s that opens the circuit breaker',
    parse: ratio,
    default: breakerFailureRateDefault,
  },
  {
    name: 'breaker-half-open-ms',
    arg: 'ms',
    help: 'how long the open breaker waits before letting one probe through',
    parse: integer(breakerHalfOpenAfterMsMin, breakerHalfOpenAfterMsMax),
    default: breakerHalfOpenAfterMsDefault,
  },
  {
    name: 'cluster-key',
    arg: 'keys',
    help: `with --store etcd and no --mirror: the key instances forward writes to each other with (>= ${clusterKeyLengthMin} characters, the same on every instance); a comma-separated list sends the first and accepts any`,
    // Checked in clusterConfig, not by the option: commander would quote the refused value, and it is a secret.
  },
  {
    name: 'cluster-advertise-url',
    arg: 'url',
    help: 'with --store etcd: where other instances reach this one (an origin: http(s)://host[:port])',
    parse: peerUrl,
    defaultHelp: 'the address it listens at',
  },
  {
    name: 'cluster-lease-ttl-s',
    arg: 's',
    help: "with --store etcd: how long a stopped instance's SKUs wait before another instance takes them",
    parse: integer(clusterLeaseTtlSMin, clusterLeaseTtlSMax),
    default: clusterLeaseTtlSDefault,
  },
  {
    name: 'watch-subscribers-max',
    arg: 'n',
    help: 'stock watchers (SSE streams) allowed at once; each holds a file descriptor',
    parse: integer(1, watchSubscribersMaxMax),
    default: watchSubscribersMaxDefault,
  },
  {
    name: 'watch-heartbeat-interval-ms',
    arg: 'ms',
    help: 'how often every stock watcher gets an SSE heartbeat comment',
    parse: integer(watchHeartbeatIntervalMsMin, watchHeartbeatIntervalMsMax),
    default: watchHeartbeatIntervalMsDefault,
  },
  { name: 'watch-public', help: 'serve GET /v1/watch without an API key (stock levels become public)' },
  { name: 'demo', help: 'seed a demo catalog into an empty store and use demo keys if none are set' },
  {
    name: 'quota-rps',
    arg: 'n',
    help: 'requests a second each API key may sustain (0 = no quota); per-key values in --keys-file',
    parse: integer(0, quotaRpsMax),
    default: quotaRpsDefault,
  },
  {
    name: 'quota-burst',
    arg: 'n',
    help: 'requests an API key may send at once above its rate (0 = one second of --quota-rps)',
    parse: integer(0, quotaBurstMax),
    default: 0,
  },
  {
    name: 'user-attempts-per-minute',
    arg: 'n',
    help: 'reservation attempts one user may make on one SKU per minute (0 = no bound)',
    parse: integer(0, userAttemptsPerMinuteMax),
    default: userAttemptsPerMinuteDefault,
  },
  { name: 'tls-cert', arg: 'file', help: 'serve HTTPS with this certificate chain (PEM); re-read on SIGHUP' },
  { name: 'tls-key', arg: 'file', help: 'the private key (PEM) of --tls-cert; re-read on SIGHUP' },
  {
    name: 'cursor-secret',
    arg: 'secret',
    help: `key material (>= ${cursorSecretLengthMin} characters) that seals listing cursors; share it between instances`,
    defaultHelp: 'derived from the API keys',
  },
  { name: 'cpu-prof', arg: 'dir', help: 'write a V8 CPU profile of the run to this directory at shutdown' },
];

/** Adds every `serve` flag, each with its environment twin. */
export function addServeOptions(command: Command): Command {
  return addFlags(command, serveFlags);
}

export interface RawServeOptions {
  store: 'lmdb' | 'etcd';
  mirror?: 'lmdb' | 'etcd';
  shadowReadRatio?: number;
  dataDir: string;
  host: string;
  port: number;
  adminKeys?: string;
  clientKeys?: string;
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
  clusterKey?: string;
  clusterAdvertiseUrl?: string;
  clusterLeaseTtlS?: number;
  watchSubscribersMax?: number;
  watchHeartbeatIntervalMs?: number;
  watchPublic?: boolean;
  quotaRps?: number;
  quotaBurst?: number;
  userAttemptsPerMinute?: number;
  tlsCert?: string;
  tlsKey?: string;
  cursorSecret?: string;
  cpuProf?: string;
}

/** A refused key source is a refused flag: the same message, as commander reports it. */
function asArgumentError<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof CredentialsError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

function keySources(raw: RawServeOptions): KeySources {
  return {
    adminKeys: raw.adminKeys === undefined ? [] : keyList(raw.adminKeys, flagLabel('admin-keys')),
    clientKeys: raw.clientKeys === undefined ? [] : keyList(raw.clientKeys, flagLabel('client-keys')),
    keysFile: raw.keysFile,
    demo: raw.demo ?? false,
    quota: asArgumentError(() => quotaOf(raw.quotaRps ?? quotaRpsDefault, raw.quotaBurst ?? 0)),
  };
}

function tlsConfig(raw: RawServeOptions): TlsConfig | undefined {
  if ((raw.tlsCert === undefined) !== (raw.tlsKey === undefined)) {
    throw new InvalidArgumentError('--tls-cert and --tls-key go together');
  }
  if (raw.tlsCert === undefined || raw.tlsKey === undefined) return undefined;
  const tls = { certFile: readable('tls-cert', raw.tlsCert), keyFile: readable('tls-key', raw.tlsKey) };
  try {
    tlsFiles(tls);
  } catch (error) {
    throw new InvalidArgumentError(`--tls-cert / --tls-key: ${(error as Error).message}`);
  }
  return tls;
}

/** The certificate chain and key, checked to be PEM that belong together; read at start and on SIGHUP. */
export function tlsFiles(tls: TlsConfig): { cert: Buffer; key: Buffer } {
  const files = { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  createSecureContext(files);
  return files;
}

function readable(flag: string, path: string): string {
  try {
    readFileSync(path);
  } catch (error) {
    throw new InvalidArgumentError(`--${flag} ${path}: ${(error as Error).message}`);
  }
  return path;
}

function mirrorOf(raw: RawServeOptions): ServeConfig['mirror'] {
  if (raw.mirror !== undefined && raw.mirror === raw.store) {
    throw new InvalidArgumentError(`--mirror ${raw.mirror} is --store already: a mirror is the other store`);
  }
  if (raw.mirror === undefined && (raw.shadowReadRatio ?? 0) > 0) {
    throw new InvalidArgumentError('--shadow-read-ratio compares with a mirror: it needs --mirror');
  }
  return raw.mirror;
}

/**
 * Distributed mode: every instance on etcd, one writer per SKU. A service
 * with a mirror is one instance (its LMDB store is local, and its moves fence
 * SKUs in this process only), so it runs without the cluster and refuses its flags.
 */
function clusterConfig(raw: RawServeOptions): ClusterConfig | undefined {
  if (raw.mirror !== undefined) {
    if (raw.clusterKey !== undefined || raw.clusterAdvertiseUrl !== undefined) {
      throw new InvalidArgumentError(
        '--mirror runs one instance, which writes every SKU itself: it does not take --cluster-key or --cluster-advertise-url (distributed mode). Move every SKU to etcd, stop, then start the instances with --store etcd --cluster-key and no --mirror',
      );
    }
    return undefined;
  }
  if (raw.store !== 'etcd') {
    if (raw.clusterKey !== undefined || raw.clusterAdvertiseUrl !== undefined) {
      throw new InvalidArgumentError('--cluster-key and --cluster-advertise-url need --store etcd');
    }
    return undefined;
  }
  if (raw.clusterKey === undefined) {
    throw new InvalidArgumentError(
      `--store etcd needs --cluster-key (at least ${clusterKeyLengthMin} characters, the same on every instance): instances send each SKU's writes to the one instance that owns it`,
    );
  }
  return {
    keys: clusterKeyList(raw.clusterKey, flagLabel('cluster-key')),
    advertiseUrl: raw.clusterAdvertiseUrl,
    leaseTtlS: raw.clusterLeaseTtlS ?? clusterLeaseTtlSDefault,
  };
}

function etcdConfig(raw: RawServeOptions): EtcdConfig | undefined {
  const etcdOnly = ['etcdCa', 'etcdCert', 'etcdKey', 'etcdExpectMembers'] as const;
  const usesEtcd = raw.store === 'etcd' || raw.mirror === 'etcd';
  const named = raw.store === 'etcd' ? '--store etcd' : '--mirror etcd';
  if (!usesEtcd) {
    if (raw.etcdEndpoints !== undefined || etcdOnly.some((name) => raw[name] !== undefined)) {
      throw new InvalidArgumentError('--etcd-* flags need --store etcd or --mirror etcd');
    }
    return undefined;
  }
  if (raw.etcdEndpoints === undefined) throw new InvalidArgumentError(`${named} needs --etcd-endpoints`);
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
  const sources = keySources(raw);
  return Object.freeze({
    store: raw.store,
    mirror: mirrorOf(raw),
    shadowReadRatio: raw.shadowReadRatio ?? 0,
    dataDir: raw.dataDir,
    etcd: etcdConfig(raw),
    cluster: clusterConfig(raw),
    breaker: {
      consecutiveFailures: raw.breakerFailures ?? breakerConsecutiveFailuresDefault,
      failureRate: raw.breakerFailureRate ?? breakerFailureRateDefault,
      halfOpenAfterMs: raw.breakerHalfOpenMs ?? breakerHalfOpenAfterMsDefault,
    },
    host: raw.host,
    port: raw.port,
    keySources: sources,
    credentials: asArgumentError(() => loadCredentials(sources)),
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
    quota: sources.quota,
    userAttemptsPerMinute: raw.userAttemptsPerMinute ?? userAttemptsPerMinuteDefault,
    tls: tlsConfig(raw),
    cursorSecret:
      raw.cursorSecret === undefined ? undefined : cursorSecret(raw.cursorSecret, flagLabel('cursor-secret')),
  });
}
