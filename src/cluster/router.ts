// The cluster router: between the HTTP routes and the engine in distributed
// mode, so that every SKU has one writer across the cluster. A mutation of
// a SKU this instance owns goes to its engine; one of a SKU another instance
// owns is forwarded there (forwarder.ts) and its answer returned as if it
// were local. Reads never come here: every instance serves them from its own
// warm state and the store.
//
// While a shard has no owner that can take writes (a hand-over, a start),
// a request waits for one, at most `clusterOwnerWaitMs`, then gets 503
// `owner_unavailable` with Retry-After. An owner that turns out not to hold
// the shard any more refuses before applying anything (the fence, or its
// own view), and the request is routed again, at most
// `clusterRouteAttemptsMax` times. An owner that does not answer is not
// waited for: its outcome is unknown, so the client hears 503 at once and
// retries with its idempotency key.
import { clusterOwnerWaitMs, clusterRouteAttemptsMax } from '../constants.ts';
import type { OrderAction } from '../domain/order-state.ts';
import type { CatalogEntry, OrderRecord } from '../domain/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { MutationGuards, Mutations } from '../engine/mutations.ts';
import { type IdempotencyIntent, type OperationResult, type Rejected, rejected } from '../engine/operations.ts';
import type { Versioned } from '../engine/queries.ts';
import type { Forwarder } from './forwarder.ts';
import type { Ownership } from './ownership.ts';
import { shardOf } from './shards.ts';
import { type ForwardedOp, skuOfOp } from './wire.ts';

/** The guards of a forwarded operation, as the engine takes them. */
function guardsOf(op: { ifMatch?: MutationGuards['ifMatch']; intent?: IdempotencyIntent }): MutationGuards {
  return { ifMatch: op.ifMatch, idempotency: op.intent };
}

/** Guards as the wire carries them: absent fields left out. */
function wireGuards(guards: MutationGuards): Pick<Extract<ForwardedOp, { kind: 'adjust' }>, 'ifMatch' | 'intent'> {
  return {
    ...(guards.ifMatch === undefined ? {} : { ifMatch: guards.ifMatch }),
    ...(guards.idempotency === undefined ? {} : { intent: guards.idempotency }),
  };
}

export class ClusterRouter implements Mutations {
  private readonly engine: Engine;
  private readonly ownership: Ownership;
  private readonly forwarder: Forwarder;

  constructor(engine: Engine, ownership: Ownership, forwarder: Forwarder) {
    this.engine = engine;
    this.ownership = ownership;
    this.forwarder = forwarder;
  }

  reserve(skuId: string, request: { qty: number; userId: string }, intent?: IdempotencyIntent) {
    const reservation = { sku: skuId, qty: request.qty, userId: request.userId };
    return this.route({ kind: 'reserve', reservation, ...(intent === undefined ? {} : { intent }) });
  }

  async transition(orderId: string, action: Exclude<OrderAction, 'expire'>, guards: MutationGuards) {
    // The order says which SKU, and so which owner; the owner checks the version read here at commit.
    const found = await this.engine.getOrder(orderId);
    if (found !== undefined && 'ok' in found) return found;
    if (found === undefined) return rejected('order_not_found', `no order ${orderId}`);
    const sku = found.record.sku;
    return this.route({ kind: 'transition', sku, orderId, action, ...wireGuards(guards) }, found);
  }

  adjust(skuId: string, change: { delta: number; reason: string }, guards: MutationGuards) {
    const adjustment = { delta: change.delta, reason: change.reason };
    return this.route({ kind: 'adjust', sku: skuId, adjustment, ...wireGuards(guards) });
  }

  upsert(skuId: string, request: { entry: CatalogEntry; initialStock?: number | undefined }, guards: MutationGuards) {
    const upsert = {
      ...request.entry,
      ...(request.initialStock === undefined ? {} : { initialStock: request.initialStock }),
    };
    return this.route({ kind: 'upsert', sku: skuId, upsert, ...wireGuards(guards) });
  }

  /** Forwarded operations, on the instance that owns their SKUs: applied here, or refused so the sender routes again. */
  serveForwarded(ops: readonly ForwardedOp[]): Promise<OperationResult[]> {
    return Promise.all(ops.map((op) => this.serveOne(op)));
  }

  private async serveOne(op: ForwardedOp): Promise<OperationResult> {
    const shard = shardOf(skuOfOp(op));
    // A shard just taken serves once this instance's feed has caught up; a short wait, not a refusal.
    const state = await this.ownership.awaitLocal(shard, performance.now() + clusterOwnerWaitMs);
    if (state !== 'owned') {
      return { ...rejected('owner_unavailable', `this instance does not own shard ${shard} now`), reroutable: true };
    }
    return this.apply(op);
  }

  private async route(op: ForwardedOp, known?: Versioned<OrderRecord>): Promise<OperationResult> {
    if (op.kind === 'reserve') {
      // A flash sale's tail is answered from memory on any instance, owner or not.
      const { sku, ...request } = op.reservation;
      const soldOut = await this.engine.soldOutAnswer(sku, request, op.intent);
      if (soldOut !== undefined) return soldOut;
    }
    const shard = shardOf(skuOfOp(op));
    const deadlineMs = performance.now() + clusterOwnerWaitMs;
    for (let attempt = 0; attempt < clusterRouteAttemptsMax; attempt++) {
      // Refused: the owner had just handed the shard over, which this instance learns of next.
      if (attempt > 0) await this.ownership.awaitChange(deadlineMs);
      const owner = await this.ownership.awaitOwner(shard, deadlineMs);
      if (owner === undefined) return this.noOwner(shard);
      const result = owner.self ? await this.apply(op, known) : await this.forwarder.send(owner, op);
      if (result.ok || !result.reroutable) return result;
    }
    return this.noOwner(shard);
  }

  private noOwner(shard: number): Rejected {
    if (this.ownership.disconnected) {
      return rejected('backend_unavailable', 'this instance has no etcd lease (etcd is unreachable); retry shortly');
    }
    return rejected('owner_unavailable', `shard ${shard} of the SKUs is changing owner; retry shortly`);
  }

  /** The operation on this instance's engine. */
  private apply(op: ForwardedOp, known?: Versioned<OrderRecord>): Promise<OperationResult> {
    switch (op.kind) {
      case 'reserve': {
        const { sku, qty, userId } = op.reservation;
        return this.engine.reserve(sku, { qty, userId }, op.intent);
      }
      case 'transition':
        return this.engine.transition(op.orderId, op.action, guardsOf(op), known);
      case 'adjust':
        return this.engine.adjust(op.sku, op.adjustment, guardsOf(op));
      case 'upsert': {
        const { initialStock, maxPerUser, ...entry } = op.upsert;
        return this.engine.upsert(
          op.sku,
          { entry: { ...entry, maxPerUser: maxPerUser ?? null }, initialStock },
          guardsOf(op),
        );
      }
    }
  }
}
