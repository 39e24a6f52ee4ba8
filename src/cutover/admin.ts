// What the admin routes show of the cutover and ask of it: the routing table
// with each mirror's lag, moves, and the shadow reads' last mismatches. A
// service without a mirror answers too: every SKU on its one store, and no
// move possible.
import type { Engine } from '../engine/engine.ts';
import { type Rejected, rejected } from '../engine/operations.ts';
import type { StoreKind } from '../layout.ts';
import type { CutoverFigures } from '../metrics.ts';
import type { MirrorStatus } from './mirror-worker.ts';
import type { MoveRequest, Moves, MoveView } from './moves.ts';
import type { Routing } from './routing.ts';
import type { ShadowMismatch, ShadowReads } from './shadow.ts';

export interface RoutingItem {
  sku: string;
  store: StoreKind;
  /** The move that put it there, if one did. */
  moveId: string | null;
  /** The lag of the mirror its store feeds: what its copy may be behind by, at most. */
  mirrorLagRevisions: number;
  mirrorLagSeconds: number;
}

export interface RoutingPage {
  home: StoreKind;
  mirror: StoreKind | null;
  /** Where a SKU without a route of its own is. */
  defaultStore: StoreKind;
  /** The initial copy into the mirror is in (moves and shadow reads need it). */
  seeded: boolean;
  mirrors: MirrorStatus[];
  skus: Partial<Record<StoreKind, number>>;
  items: RoutingItem[];
  /** The last SKU of this page, to continue after; null after the last page. */
  next: string | null;
}

export interface CutoverAdmin {
  routing(query: { limit: number; after?: string | undefined }): RoutingPage;
  createMove(request: MoveRequest): Promise<MoveView | Rejected>;
  move(id: string): MoveView | undefined;
  moves(): MoveView[];
  mismatches(): ShadowMismatch[];
}

/**
 * Pages of SKUs in id order. The sorted list is kept and sorted again only
 * when SKUs were added (none is ever removed), so paging a large catalog does
 * not sort it on every request.
 */
function pager(engine: Engine) {
  let sorted: string[] = [];
  return (limit: number, after: string | undefined): { ids: string[]; next: string | null } => {
    const ids = engine.skuIds();
    if (ids.length !== sorted.length) sorted = ids.sort();
    const from = after === undefined ? 0 : firstAfter(sorted, after);
    const page = sorted.slice(from, from + limit);
    return { ids: page, next: from + limit < sorted.length ? page.at(-1)! : null };
  };
}

/** Index of the first id after `after` in a sorted list (binary search). */
function firstAfter(sorted: readonly string[], after: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle]! <= after) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function cutoverAdmin(
  engine: Engine,
  routing: Routing,
  mirrors: () => MirrorStatus[],
  moves: Moves,
  shadow: ShadowReads,
): CutoverAdmin {
  const pageOf = pager(engine);
  return {
    routing: ({ limit, after }) => {
      const statuses = mirrors();
      const lagFrom = new Map(statuses.map((status) => [status.from, status]));
      const { ids, next } = pageOf(limit, after);
      return {
        home: routing.home.kind,
        mirror: routing.other(routing.home.kind),
        defaultStore: routing.defaultStore,
        seeded: routing.seeded,
        mirrors: statuses,
        skus: skusByStore(engine, routing),
        items: ids.map((sku) => {
          const store = routing.kindOf(sku);
          const lag = lagFrom.get(store);
          return {
            sku,
            store,
            moveId: routing.moveOf(sku) ?? null,
            mirrorLagRevisions: lag?.lagRevisions ?? 0,
            mirrorLagSeconds: lag?.lagSeconds ?? 0,
          };
        }),
        next,
      };
    },
    createMove: (request) => moves.create(request),
    move: (id) => moves.get(id),
    moves: () => moves.list(),
    mismatches: () => shadow.mismatches(),
  };
}

export function skusByStore(engine: Engine, routing: Routing): Partial<Record<StoreKind, number>> {
  const counts: Partial<Record<StoreKind, number>> = { [routing.home.kind]: 0, [routing.other(routing.home.kind)]: 0 };
  for (const sku of engine.skuIds()) {
    const kind = routing.kindOf(sku);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** The figures /metrics exports of a cutover. */
export function cutoverFigures(engine: Engine, routing: Routing, mirrors: () => MirrorStatus[], moves: Moves) {
  const figures: CutoverFigures = {
    mirrors: () => mirrors().map((status) => ({ ...status, applied: status.appliedEntries })),
    outboxes: () => mirrors().map((status) => ({ store: status.from, entries: status.outboxEntries })),
    movesByState: () => moves.countByState(),
    skusByStore: () => skusByStore(engine, routing),
  };
  return figures;
}

/** The admin routes of a service on one store: every SKU there, no mirror, no move. */
export function singleStoreAdmin(engine: Engine, kind: StoreKind): CutoverAdmin {
  const pageOf = pager(engine);
  const noMirror = (): Rejected =>
    rejected('mirror_not_configured', 'this instance runs without --mirror: there is no other store to move to');
  return {
    routing: ({ limit, after }) => {
      const { ids, next } = pageOf(limit, after);
      return {
        home: kind,
        mirror: null,
        defaultStore: kind,
        seeded: false,
        mirrors: [],
        skus: { [kind]: engine.skuIds().length },
        items: ids.map((sku) => ({ sku, store: kind, moveId: null, mirrorLagRevisions: 0, mirrorLagSeconds: 0 })),
        next,
      };
    },
    createMove: async () => noMirror(),
    move: () => undefined,
    moves: () => [],
    mismatches: () => [],
  };
}
