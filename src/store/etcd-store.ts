// The distributed store: the store contract on an etcd v3 cluster through the
// `etcd3` client.
//
// - Every hotstock key lives under a namespace prefix (`--etcd-prefix`), so
//   several deployments can share a cluster. etcd orders keys by bytes, and a
//   key is the prefix followed by its UTF-8 bytes, so ranges come out in the
//   contract's UTF-8 byte order.
// - A commit is one Txn: each version check is a `mod_revision` compare (0
//   means absent: etcd compares an absent key's mod_revision as 0), the writes
//   are the success branch; after a conflict the checked keys are read to name
//   the ones that moved. A commit is never split: one that does not fit
//   etcd's limits is refused whole.
// - The store revision is etcd's header revision; an entry's version is its
//   mod_revision. etcd fsyncs its log on a quorum before it answers.
// - The change feed is one etcd watch per subscribed key prefix
//   (etcd-feed.ts), so a subscriber receives, and etcd sends it, only the
//   keys it follows.
// - Every call has a deadline from constants.ts and, when a breaker is given,
//   runs through it, so a dead cluster becomes fast `backend_unavailable`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  noop,
  retry,
} from 'cockatiel';
import { Etcd3, type IKeyValue, type IOptions, type IRequestOp, isRecoverableError } from 'etcd3';
import {
  etcdCallAttemptsMax,
  etcdCommitBytesMax,
  etcdCommitTimeoutMs,
  etcdDialTimeoutMs,
  etcdReadTimeoutMs,
  etcdRequestBytesMax,
  etcdWatchBackoffMsMax,
  etcdWatchBackoffMsMin,
  retryAfterSeconds,
} from '../constants.ts';
import type { BackendBreaker } from './backend-breaker.ts';
import {
  type ChangeListener,
  type CommitResult,
  type Entry,
  type GapListener,
  type RangeQuery,
  type Store,
  StoreFailure,
  type StoreLimits,
  type VersionCheck,
  type Write,
} from './contract.ts';
import { EtcdFeed, type EtcdFeedHost } from './etcd-feed.ts';

export interface EtcdTls {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdConnection {
  endpoints: readonly string[];
  tls?: EtcdTls;
}

type EtcdFaultHandling = NonNullable<IOptions['faultHandling']>;
type EtcdPolicy = NonNullable<EtcdFaultHandling['global']>;
type EtcdBackoff = NonNullable<EtcdFaultHandling['watchBackoff']>;

/**
 * Errors worth another member or a later attempt. etcd3 counts RESOURCE_EXHAUSTED
 * as one, but out of space is the cluster's answer, the same on every member.
 */
function recoverable(error: unknown): boolean {
  return error instanceof Error && isRecoverableError(error) && !isNoSpaceError(error);
}

/** How long a member that failed calls is skipped before it is tried again. */
const hostHalfOpenAfterMs = 1_000;
/** Consecutive failures that make the client skip one member. */
const hostConsecutiveFailures = 2;

/**
 * An etcd3 client with every option stated: dial timeout, TLS, and fault
 * handling. The client itself retries nothing: a commit whose answer was lost
 * may have been applied, and sending it again would fail its own version
 * checks and be taken for a conflict, then decided again (applied twice).
 * EtcdStore retries reads on another member instead (`etcdCallAttemptsMax`);
 * a member that keeps failing is skipped for a while. The watch reconnects
 * with a bounded backoff.
 */
export function createEtcdClient(connection: EtcdConnection): Etcd3 {
  const tls = connection.tls;
  return new Etcd3({
    hosts: [...connection.endpoints],
    dialTimeout: etcdDialTimeoutMs,
    ...(tls
      ? {
          credentials: {
            rootCertificate: readFileSync(tls.caFile),
            ...(tls.keyFile ? { privateKey: readFileSync(tls.keyFile) } : {}),
            ...(tls.certFile ? { certChain: readFileSync(tls.certFile) } : {}),
          },
        }
      : {}),
    // etcd3 bundles an older cockatiel; its pool only calls `execute`, which these policies share.
    faultHandling: {
      global: noop as unknown as EtcdPolicy,
      host: () =>
        circuitBreaker(handleWhen(recoverable), {
          halfOpenAfter: hostHalfOpenAfterMs,
          breaker: new ConsecutiveBreaker(hostConsecutiveFailures),
        }) as unknown as EtcdPolicy,
      watchBackoff: new ExponentialBackoff({
        initialDelay: etcdWatchBackoffMsMin,
        maxDelay: etcdWatchBackoffMsMax,
      }) as unknown as EtcdBackoff,
    },
  });
}

/** etcd's answer when its backend quota is used up and the NOSPACE alarm is raised. */
export function isNoSpaceError(error: unknown): boolean {
  return error instanceof Error && /database space exceeded|NOSPACE/i.test(error.message);
}

/**
 * Which failures count towards opening a breaker around etcd: out of space is
 * the backend answering, not failing; it gets its own error, not an open breaker.
 */
export function countsAsEtcdFailure(error: unknown): boolean {
  return !isNoSpaceError(error) && !(error instanceof Error && isNoSpaceError(error.cause));
}

/** Maps an etcd failure onto the store's failure codes; anything else passes through. */
function storeFailureOf(error: unknown): unknown {
  if (error instanceof StoreFailure) return error;
  if (isNoSpaceError(error)) {
    return new StoreFailure(
      'backend_no_space',
      'etcd is out of space (NOSPACE alarm): compact and defragment it, or raise --quota-backend-bytes, then disarm the alarm',
      retryAfterSeconds,
      { cause: error },
    );
  }
  // etcd3 skips members whose own breaker is open; with every member skipped, the call fails that way.
  if (
    error instanceof Error &&
    (isRecoverableError(error) || isBrokenCircuitError(error) || /deadline|unavailable|no leader/i.test(error.message))
  ) {
    return new StoreFailure('backend_unavailable', `etcd did not answer: ${error.message}`, retryAfterSeconds, {
      cause: error,
    });
  }
  return error;
}

export interface EtcdStoreOptions {
  client: Etcd3;
  /** Closed with the store. */
  ownsClient: boolean;
  /** Namespace of every key; must not be empty. */
  prefix: string;
  /** The cluster's --max-txn-ops (etcd's default is 128). */
  maxTxnOps: number;
  breaker?: BackendBreaker;
}

/** Protobuf framing of one Txn operation (field tags, lengths, the op's own fields), counted generously. */
const txnOpFramingBytes = 32;

/** The call options that give one etcd call `timeoutMs` to answer. */
export function deadline(timeoutMs: number): { deadline: number } {
  return { deadline: Date.now() + timeoutMs };
}

export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly limits: StoreLimits;
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly prefixBytes: Buffer;
  private readonly maxTxnOps: number;
  private readonly breaker: BackendBreaker | undefined;
  /** The change feeds, by the key prefix they follow. */
  private readonly feeds = new Map<string, EtcdFeed>();
  private readonly feedHost: EtcdFeedHost;
  /** The highest revision any answer from etcd has shown this store. */
  private seenRevision = 0;
  /** Reads that fail recoverably go to another member, up to `etcdCallAttemptsMax` attempts in all. */
  private readonly readRetry = retry(handleWhen(recoverable), { maxAttempts: etcdCallAttemptsMax - 1 });
  private closed = false;

  constructor(options: EtcdStoreOptions) {
    assert.ok(options.prefix.length > 0, 'the etcd key prefix must not be empty');
    this.client = options.client;
    this.ownsClient = options.ownsClient;
    this.prefix = options.prefix;
    this.prefixBytes = Buffer.from(options.prefix, 'utf8');
    this.maxTxnOps = options.maxTxnOps;
    this.breaker = options.breaker;
    this.feedHost = {
      client: this.client,
      revision: () => this.revision(),
      see: (revision) => this.see(revision),
      unkey: (raw) => this.unkey(raw),
    };
    // etcd caps compares and success ops at max-txn-ops each, so checks and writes each get the whole cap.
    this.limits = {
      commitChecksMax: options.maxTxnOps,
      commitWritesMax: options.maxTxnOps,
      commitBytesMax: etcdCommitBytesMax,
    };
  }

  private key(key: string): Buffer {
    return Buffer.concat([this.prefixBytes, Buffer.from(key, 'utf8')]);
  }

  private unkey(raw: Buffer): string {
    assert.ok(raw.subarray(0, this.prefixBytes.length).equals(this.prefixBytes), 'key outside the namespace');
    return raw.subarray(this.prefixBytes.length).toString('utf8');
  }

  private entry<V>(kv: IKeyValue): Entry<V> {
    const version = Number(kv.mod_revision);
    assert.ok(Number.isSafeInteger(version) && version > 0, 'etcd entry without a revision');
    return { key: this.unkey(kv.key), value: JSON.parse(kv.value.toString('utf8')) as V, version };
  }

  private see(revision: string | number): number {
    const value = Number(revision);
    if (value > this.seenRevision) this.seenRevision = value;
    return value;
  }

  /** Runs one etcd call through the breaker, with etcd failures mapped to store failures. */
  /**
   * One etcd call through the breaker, with etcd errors mapped to store
   * failures. Reads are retried on another member; a commit is sent once
   * (`idempotent: false`): an unclear outcome is an error, never a resend.
   */
  private async call<T>(body: () => Promise<T>, idempotent = true): Promise<T> {
    const attempt = idempotent ? () => this.readRetry.execute(body) : body;
    const mapped = async () => {
      try {
        return await attempt();
      } catch (error) {
        throw storeFailureOf(error);
      }
    };
    return this.breaker ? this.breaker.execute(mapped) : mapped();
  }

  async get<V = unknown>(key: string): Promise<Entry<V> | undefined> {
    const response = await this.call(() => this.client.kv.range({ key: this.key(key) }, deadline(etcdReadTimeoutMs)));
    this.see(response.header.revision);
    const kv = response.kvs[0];
    return kv && this.entry<V>(kv);
  }

  async getMany<V = unknown>(keys: readonly string[]): Promise<(Entry<V> | undefined)[]> {
    const ranges = await this.readTxns<V>(keys.map((key) => ({ key: this.key(key) })));
    return ranges.map((entries) => entries[0]);
  }

  async rangeMany<V = unknown>(queries: readonly RangeQuery[]): Promise<Entry<V>[][]> {
    for (const query of queries) assert.ok(query.limit > 0, 'range limit must be positive');
    return this.readTxns<V>(
      queries.map((query) => ({ key: this.key(query.start), range_end: this.key(query.end), limit: query.limit })),
    );
  }

  /**
   * Range requests at one snapshot: one Txn of reads, and more requests than
   * a Txn holds in further Txns pinned to the first one's revision.
   */
  private async readTxns<V>(
    requests: readonly { key: Buffer; range_end?: Buffer; limit?: number }[],
  ): Promise<Entry<V>[][]> {
    const results: Entry<V>[][] = [];
    let revision: number | undefined;
    for (let i = 0; i < requests.length; i += this.maxTxnOps) {
      const chunk = requests.slice(i, i + this.maxTxnOps);
      const pinned = revision;
      const response = await this.call(() =>
        this.client.kv.txn(
          {
            compare: [],
            success: chunk.map((request) => ({
              request_range: { ...request, ...(pinned ? { revision: pinned } : {}) },
            })),
            failure: [],
          },
          deadline(etcdReadTimeoutMs),
        ),
      );
      revision ??= this.see(response.header.revision);
      for (const op of response.responses) results.push(op.response_range.kvs.map((kv) => this.entry<V>(kv)));
    }
    return results;
  }

  async range<V = unknown>(query: RangeQuery): Promise<Entry<V>[]> {
    assert.ok(query.limit > 0, 'range limit must be positive');
    const response = await this.call(() =>
      this.client.kv.range(
        { key: this.key(query.start), range_end: this.key(query.end), limit: query.limit },
        deadline(etcdReadTimeoutMs),
      ),
    );
    this.see(response.header.revision);
    return response.kvs.map((kv) => this.entry<V>(kv));
  }

  async commit(checks: readonly VersionCheck[], writes: readonly Write[]): Promise<CommitResult> {
    // Over-limit commits are refused whole, before etcd sees them: never split, never half-applied.
    assert.ok(checks.length <= this.limits.commitChecksMax, 'commit exceeds commitChecksMax');
    assert.ok(writes.length <= this.limits.commitWritesMax, 'commit exceeds commitWritesMax');
    const compare = checks.map((check) => ({
      key: this.key(check.key),
      target: 'Mod' as const,
      result: 'Equal' as const,
      mod_revision: check.version,
    }));
    // Each value is serialized once, and the request's size counted from what is sent.
    let bytes = 0;
    const success: IRequestOp[] = writes.map((write) => {
      const key = this.key(write.key);
      if (write.type === 'delete') {
        bytes += key.length + txnOpFramingBytes;
        return { request_delete_range: { key } };
      }
      const value = Buffer.from(JSON.stringify(write.value), 'utf8');
      bytes += key.length + value.length + txnOpFramingBytes;
      return { request_put: { key, value } };
    });
    for (const check of compare) bytes += check.key.length + txnOpFramingBytes;
    assert.ok(bytes <= etcdRequestBytesMax, `commit of ${bytes} bytes exceeds etcd's request limit`);
    const response = await this.call(
      () => this.client.kv.txn({ compare, success, failure: [] }, deadline(etcdCommitTimeoutMs)),
      false,
    );
    const revision = this.see(response.header.revision);
    if (response.succeeded) return { ok: true, revision };
    return { ok: false, conflictKeys: await this.movedKeys(checks) };
  }

  /**
   * The checked keys whose versions differ now: read after a failed commit,
   * rather than carried as a failure branch in every commit (one more
   * operation per check to encode and decode, for the rare conflict). If
   * etcd cannot say, every checked key is named.
   */
  private async movedKeys(checks: readonly VersionCheck[]): Promise<string[]> {
    try {
      const current = await this.getMany(checks.map((check) => check.key));
      return checks.filter((check, i) => (current[i]?.version ?? 0) !== check.version).map((check) => check.key);
    } catch {
      return checks.map((check) => check.key);
    }
  }

  async revision(): Promise<number> {
    const response = await this.call(() =>
      this.client.kv.range({ key: this.prefixBytes, keys_only: true, limit: 1 }, deadline(etcdReadTimeoutMs)),
    );
    return this.see(response.header.revision);
  }

  subscribe(prefix: string, listener: ChangeListener, onGap?: GapListener): () => void {
    let feed = this.feeds.get(prefix);
    if (feed === undefined) {
      feed = new EtcdFeed(this.feedHost, this.key(prefix));
      this.feeds.set(prefix, feed);
    }
    const unsubscribe = feed.subscribe(listener, onGap, this.seenRevision);
    return () => {
      unsubscribe();
      if (feed.idle && this.feeds.get(prefix) === feed) this.feeds.delete(prefix);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const feeds = [...this.feeds.values()];
    this.feeds.clear();
    await Promise.all(feeds.map((feed) => feed.close()));
    if (this.ownsClient) this.client.close();
  }
}
