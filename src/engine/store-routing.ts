// Which store holds a SKU authoritatively. One store unless the service runs
// with a mirror: then each SKU is authoritative on one of two stores, the
// other holds a copy (cutover/), and a move can change a SKU's store while
// the service runs. The engine asks here for every SKU-scoped read and
// commit; reads that span SKUs (listings of a user's orders, the catalog
// index) go to the home store, which holds every SKU, authoritatively or as
// a mirror copy.
import type { OrderRecord } from '../domain/types.ts';
import { keys } from '../layout.ts';
import type { Entry, Store } from '../store/contract.ts';

export interface StoreRouting {
  /** The store reads that span SKUs go to (the one named by --store). */
  readonly home: Store;
  /** The store a SKU's writer commits to and its reads come from. */
  storeFor(skuId: string): Store;
  /** Every store a SKU may be authoritative on, each once. */
  stores(): readonly Store[];
  /** Whether any SKU is authoritative on `store` now (work for those SKUs alone can skip a store that holds none). */
  holdsAny(store: Store): boolean;
  /** An order, read from the store authoritative for its SKU. */
  getOrder(orderId: string): Promise<Entry<OrderRecord> | undefined>;
  /**
   * Runs `work` while no SKU changes store: a move's switch waits for it to
   * end, and it waits for a switch under way. For work that reads a SKU's
   * routing and then commits outside its writer (the idempotency sweep).
   */
  stable<T>(work: () => Promise<T>): Promise<T>;
}

/** Every SKU on one store: the service without a mirror. */
export function singleStore(store: Store): StoreRouting {
  const stores = [store] as const;
  return {
    home: store,
    storeFor: () => store,
    stores: () => stores,
    holdsAny: () => true,
    getOrder: (orderId) => store.get<OrderRecord>(keys.order(orderId)),
    stable: (work) => work(),
  };
}
