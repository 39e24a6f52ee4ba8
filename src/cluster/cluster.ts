// Distributed mode's parts, put together for the composition root: shard
// ownership (leases in etcd), the fence on every commit, and the router
// (with its forwarder) between the HTTP routes and the engine. The order of
// life: `fence` the store, `route` the engine, `start` following the
// cluster once the engine is warm, `join` once the server listens (peers
// need its address), `leave` on shutdown.
import { randomUUID } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.ts';
import type { OperationResult } from '../engine/operations.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/contract.ts';
import { FencedStore } from './fenced-store.ts';
import { Forwarder } from './forwarder.ts';
import { Ownership } from './ownership.ts';
import { ClusterRegistry } from './registry.ts';
import { ClusterRouter } from './router.ts';
import { shardOf } from './shards.ts';
import type { ForwardedOp } from './wire.ts';

export interface ClusterConfig {
  /** Cluster keys: the first is sent to peers, any is accepted from them. */
  keys: readonly string[];
  /** Where peers reach this instance; the address it listens at when undefined. */
  advertiseUrl: string | undefined;
  leaseTtlS: number;
}

export interface ClusterOptions {
  client: Etcd3;
  /** The etcd namespace (--etcd-prefix). */
  prefix: string;
  /** The etcd store itself, whose change feed carries the cluster's keys. */
  feed: Store;
  config: ClusterConfig;
  log: Logger;
  metrics: Metrics;
}

export class Cluster {
  readonly ownership: Ownership;
  private readonly forwarder: Forwarder;
  private readonly config: ClusterConfig;
  private readonly metrics: Metrics;
  private router: ClusterRouter | undefined;
  private engine: Engine | undefined;

  constructor(options: ClusterOptions) {
    const log = options.log.child({ component: 'cluster' });
    this.config = options.config;
    this.metrics = options.metrics;
    this.ownership = new Ownership({
      memberId: randomUUID(),
      registry: new ClusterRegistry(options.client, options.prefix, options.config.leaseTtlS),
      feed: options.feed,
      drain: (shards) => this.engine?.drainWhere((skuId) => shards.has(shardOf(skuId))) ?? Promise.resolve(),
      catchUp: (revision) => this.engine?.catchUp(revision) ?? Promise.resolve(),
      log,
      observer: { handedOver: (direction, shards) => options.metrics.clusterHandOvers.inc({ direction }, shards) },
    });
    this.forwarder = new Forwarder({
      key: () => this.config.keys[0]!,
      members: () => this.ownership.liveMembers(),
      observer: { forwarded: (outcome, operations) => options.metrics.clusterForwarded.inc({ outcome }, operations) },
      log,
    });
    options.metrics.followCluster(() => this.ownership.figures());
  }

  /** The store the engine commits through: every commit of a SKU carries its shard's fence. */
  fence(store: Store): Store {
    return new FencedStore(store, this.ownership, (check) => this.metrics.clusterFenceRefusals.inc({ check }));
  }

  /** What the HTTP routes mutate through: the engine here, or the owner of the SKU. */
  route(engine: Engine): ClusterRouter {
    this.engine = engine;
    this.router = new ClusterRouter(engine, this.ownership, this.forwarder);
    return this.router;
  }

  /** True while this instance writes the SKU (the sweeper expires only those reservations). */
  serves(skuId: string): boolean {
    return this.ownership.ownerOf(shardOf(skuId))?.self === true;
  }

  serveForwarded(ops: readonly ForwardedOp[]): Promise<OperationResult[]> {
    return this.router!.serveForwarded(ops);
  }

  /** Starts following members and owners (the engine is warm by now). */
  start(): Promise<void> {
    return this.ownership.start();
  }

  /** Announces this instance at its advertised URL (or `listeningUrl`) and takes its share of the shards. */
  join(listeningUrl: string): Promise<void> {
    return this.ownership.join(this.config.advertiseUrl ?? listeningUrl);
  }

  /** Hands every shard over (after its batches land) and leaves, within `signal`. */
  async leave(signal: AbortSignal): Promise<void> {
    await this.ownership.leave(signal);
    this.forwarder.close();
  }

  /** Stops at once (a failed start): the lease lapses on its own. */
  close(): void {
    this.ownership.close();
    this.forwarder.close();
  }

  status(): Record<string, unknown> {
    return { ...this.ownership.status(), leaseTtlS: this.config.leaseTtlS };
  }
}
