// Sending operations to the instance that owns their SKU. Operations for one
// peer that arrive together travel together, as the SKU writer batches its
// commits: each peer has a bounded queue and at most
// `clusterForwardRequestsPerPeerMax` requests in flight, each carrying every
// queued operation that fits (`clusterForwardOpsMax`, and the body limit).
// Every request has a deadline and a bounded answer. When no usable answer
// arrives (refused, reset, timed out, malformed), whether the owner applied
// the operations is unknown: each gets 503 `owner_unavailable`, and a client
// retry with the same idempotency key replays or decides it once.
import type { Logger } from 'pino';
import { Pool } from 'undici';
import {
  clusterForwardBodyBytesMax,
  clusterForwardConnectTimeoutMs,
  clusterForwardFailureLogIntervalMs,
  clusterForwardOpsMax,
  clusterForwardQueueOpsMax,
  clusterForwardRequestsPerPeerMax,
  clusterForwardResponseBytesMax,
  clusterForwardTimeoutMs,
  clusterPeerKeepAliveMs,
} from '../constants.ts';
import { type OperationResult, type Rejected, rejected } from '../engine/operations.ts';
import type { ErrorCode } from '../errors.ts';
import { type ForwardedOp, forwardedOperationsPath, resultsOf } from './wire.ts';

/** How a forwarded operation ended: the owner answered it, refused it before applying it, or no answer came. */
export type ForwardOutcome = 'answered' | 'refused' | 'failed';

export interface ForwardObserver {
  forwarded(outcome: ForwardOutcome, operations: number): void;
}

export interface Peer {
  id: string;
  url: string;
}

interface Pending {
  json: string;
  bytes: number;
  resolve: (result: OperationResult) => void;
}

/** Refusals an owner sends before it looks at the operations (nothing applied): passed on as they are. */
const refusalsPassedOn = new Set<ErrorCode>(['overloaded', 'not_ready']);
/** Bytes of `{"ops":[` and `]}`. */
const envelopeBytes = 12;

class PeerChannel {
  readonly url: string;
  private readonly pool: Pool;
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;
  private loggedAtMs = Number.NEGATIVE_INFINITY;
  private readonly forwarder: Forwarder;

  constructor(url: string, forwarder: Forwarder) {
    this.url = url;
    this.forwarder = forwarder;
    this.pool = new Pool(url, {
      connections: clusterForwardRequestsPerPeerMax,
      pipelining: 1,
      connectTimeout: clusterForwardConnectTimeoutMs,
      headersTimeout: clusterForwardTimeoutMs,
      bodyTimeout: clusterForwardTimeoutMs,
      keepAliveTimeout: clusterPeerKeepAliveMs,
      maxResponseSize: clusterForwardResponseBytesMax,
    });
  }

  enqueue(op: ForwardedOp): Promise<OperationResult> {
    if (this.queue.length >= clusterForwardQueueOpsMax) {
      return Promise.resolve(rejected('overloaded', 'too many writes are waiting for the owner of this SKU'));
    }
    const json = JSON.stringify(op);
    return new Promise((resolve) => {
      this.queue.push({ json, bytes: Buffer.byteLength(json), resolve });
      this.schedule();
    });
  }

  /** Sends after the I/O of this loop turn, so operations that arrived together go together. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < clusterForwardRequestsPerPeerMax && this.queue.length > 0) {
      const batch = this.take();
      this.inFlight++;
      void this.post(batch).finally(() => {
        this.inFlight--;
        this.flush();
      });
    }
  }

  /** The operations at the head of the queue that fit one request (always at least one). */
  private take(): Pending[] {
    let bytes = envelopeBytes;
    let count = 0;
    while (count < this.queue.length && count < clusterForwardOpsMax) {
      bytes += this.queue[count]!.bytes + 1;
      if (count > 0 && bytes > clusterForwardBodyBytesMax) break;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async post(batch: Pending[]): Promise<void> {
    const body = `{"ops":[${batch.map((pending) => pending.json).join(',')}]}`;
    let answers: OperationResult[];
    try {
      const response = await this.pool.request({
        path: forwardedOperationsPath,
        method: 'POST',
        headers: { authorization: `Bearer ${this.forwarder.sendKey}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(clusterForwardTimeoutMs),
      });
      const text = await response.body.text();
      answers = this.answersOf(response.statusCode, text, batch.length);
    } catch (error) {
      this.logFailure(`no answer: ${(error as Error).message}`);
      answers = batch.map(() => unknownOutcome(this.url));
    }
    let refused = 0;
    let failed = 0;
    for (const [i, pending] of batch.entries()) {
      const answer = answers[i]!;
      if (!answer.ok && answer.reroutable) refused++;
      else if (!answer.ok && answer.code === 'owner_unavailable') failed++;
      pending.resolve(answer);
    }
    this.forwarder.observe(batch.length - refused - failed, refused, failed);
  }

  /** One result per operation: the owner's, its refusal of them all, or unknown outcomes. */
  private answersOf(status: number, text: string, sent: number): OperationResult[] {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status === 200) {
      const results = resultsOf(parsed, sent);
      if (results !== undefined) return results;
      this.logFailure('an answer that is not one hotstock sends');
      return Array.from({ length: sent }, () => unknownOutcome(this.url));
    }
    const code = (parsed as { code?: ErrorCode } | undefined)?.code;
    if (status === 503 && code !== undefined && refusalsPassedOn.has(code)) {
      const refusal: Rejected = rejected(code, `the owner of this SKU refused: ${code}`);
      // Refused before it was looked at: a peer that is stopping applied nothing, and another may take it.
      return Array.from({ length: sent }, () => (code === 'not_ready' ? { ...refusal, reroutable: true } : refusal));
    }
    this.logFailure(`HTTP ${status} ${String(code)} (do all instances share --cluster-key?)`);
    return Array.from({ length: sent }, () => unknownOutcome(this.url));
  }

  private logFailure(what: string): void {
    const nowMs = performance.now();
    if (nowMs - this.loggedAtMs < clusterForwardFailureLogIntervalMs) return;
    this.loggedAtMs = nowMs;
    this.forwarder.log.warn({ peer: this.url }, `forwarding to the owner failed: ${what}`);
  }

  /** Operations never sent are refused as not applied, so the router may send them to another owner. */
  close(): void {
    const refusal: Rejected = {
      ...rejected('owner_unavailable', 'this instance is leaving the cluster'),
      reroutable: true,
    };
    for (const pending of this.queue.splice(0)) pending.resolve(refusal);
    void this.pool.close().catch(() => undefined);
  }
}

function unknownOutcome(url: string): Rejected {
  return rejected('owner_unavailable', `the instance that owns this SKU (${url}) did not answer; retry shortly`);
}

export class Forwarder {
  readonly log: Logger;
  private readonly channels = new Map<string, PeerChannel>();
  private readonly keys: () => string;
  private readonly observer: ForwardObserver;
  private readonly members: () => ReadonlySet<string>;

  /**
   * `key` gives the cluster key to send (it can rotate); `members` the ids
   * of the live members, so connections to departed ones are closed.
   */
  constructor(options: {
    key: () => string;
    members: () => ReadonlySet<string>;
    observer: ForwardObserver;
    log: Logger;
  }) {
    this.keys = options.key;
    this.members = options.members;
    this.observer = options.observer;
    this.log = options.log;
  }

  get sendKey(): string {
    return this.keys();
  }

  send(peer: Peer, op: ForwardedOp): Promise<OperationResult> {
    let channel = this.channels.get(peer.id);
    if (channel === undefined || channel.url !== peer.url) {
      channel?.close();
      this.forgetDeparted();
      channel = new PeerChannel(peer.url, this);
      this.channels.set(peer.id, channel);
    }
    return channel.enqueue(op);
  }

  /** Connections are kept only to live members, so the map is bounded by the members. */
  private forgetDeparted(): void {
    const live = this.members();
    for (const [id, channel] of this.channels) {
      if (live.has(id)) continue;
      channel.close();
      this.channels.delete(id);
    }
  }

  observe(answered: number, refused: number, failed: number): void {
    if (answered > 0) this.observer.forwarded('answered', answered);
    if (refused > 0) this.observer.forwarded('refused', refused);
    if (failed > 0) this.observer.forwarded('failed', failed);
  }

  close(): void {
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
  }
}
