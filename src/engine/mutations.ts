// What the HTTP layer asks to change. The engine does it itself; in
// distributed mode the cluster router (src/cluster/router.ts) has it done by
// the instance that owns the SKU, here or on a peer. The answers are the same.
import type { OrderAction } from '../domain/order-state.ts';
import type { CatalogEntry } from '../domain/types.ts';
import type { IdempotencyIntent, IfMatch, OperationResult } from './operations.ts';

/** What a guarded mutation carries besides its own fields. */
export interface MutationGuards {
  ifMatch?: IfMatch | undefined;
  idempotency?: IdempotencyIntent | undefined;
}

export interface Mutations {
  reserve(
    skuId: string,
    request: { qty: number; userId: string },
    intent?: IdempotencyIntent,
  ): Promise<OperationResult>;
  transition(orderId: string, action: Exclude<OrderAction, 'expire'>, guards: MutationGuards): Promise<OperationResult>;
  adjust(skuId: string, change: { delta: number; reason: string }, guards: MutationGuards): Promise<OperationResult>;
  upsert(
    skuId: string,
    request: { entry: CatalogEntry; initialStock?: number | undefined },
    guards: MutationGuards,
  ): Promise<OperationResult>;
}
