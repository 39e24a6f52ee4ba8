// What a batch reads before it is decided, into a fresh working set: the SKU
// record and every key its operations need, each as the newest batch still
// in flight left it or, if none wrote it, from the store; then, where a
// per-user limit applies, the units each user whose units the batch may move
// holds of the SKU.
import { userSkuOrdersScanMax } from '../constants.ts';
import type { OrderRecord, SkuRecord } from '../domain/types.ts';
import { keys, type UserOrderEntry } from '../layout.ts';
import { type Entry, prefixEnd, type Store } from '../store/contract.ts';
import { readKeys } from './decide.ts';
import type { Operation } from './operations.ts';
import { aheadVersion, WorkingSet } from './working-set.ts';

/** A batch still in flight, as a batch layered on it sees it. */
export interface Ahead {
  ws: WorkingSet;
  /** Its commit's revision, when the store said it at issue; undefined until it lands otherwise. */
  revision: number | undefined;
}

/** The newest batch ahead that wrote `key`, with what it wrote. */
function writtenAhead(aheads: readonly Ahead[], key: string) {
  for (let i = aheads.length - 1; i >= 0; i--) {
    const written = aheads[i]!.ws.written(key);
    if (written) return { written, version: aheads[i]!.revision ?? aheadVersion };
  }
  return undefined;
}

export async function readBatch(
  store: Store,
  skuId: string,
  warm: { record: SkuRecord; version: number } | undefined,
  ops: readonly Operation[],
  aheads: readonly Ahead[],
): Promise<WorkingSet> {
  const ws = new WorkingSet();
  const skuKey = keys.sku(skuId);
  const skuAhead = writtenAhead(aheads, skuKey);
  if (skuAhead) ws.loadAhead(skuKey, skuAhead.written, skuAhead.version);
  else ws.load(skuKey, warm && { key: skuKey, value: warm.record, version: warm.version });
  const fromStore = new Set<string>();
  const load = (key: string, hint?: Entry<OrderRecord>) => {
    if (ws.has(key)) return;
    const ahead = writtenAhead(aheads, key);
    if (ahead) ws.loadAhead(key, ahead.written, ahead.version);
    else if (hint) {
      // Read to route the transition here, maybe before a commit that changed it: checked at commit.
      fromStore.delete(key);
      ws.load(key, hint, true);
    } else fromStore.add(key);
  };
  for (const op of ops) {
    if (op.kind === 'transition' && op.hint !== undefined) load(op.hint.key, op.hint);
    for (const key of readKeys(op)) load(key);
  }
  if (fromStore.size > 0) {
    const wanted = [...fromStore];
    const entries = await store.getMany(wanted);
    for (const [i, key] of wanted.entries()) ws.load(key, entries[i]);
  }
  await loadHeld(store, skuId, ws, ops, aheads);
  return ws;
}

/** Users whose units the batch's operations may move: who reserves, and whose orders change. */
function movingUsers(ws: WorkingSet, ops: readonly Operation[]): Set<string> {
  const users = new Set<string>();
  for (const op of ops) {
    if (op.kind === 'reserve') users.add(op.userId);
    else if (op.kind === 'transition' || op.kind === 'expire') {
      const order = ws.get<OrderRecord>(keys.order(op.orderId));
      if (order !== undefined) users.add(order.userId);
    }
  }
  return users;
}

/**
 * The units each moving user holds, when the SKU has a per-user limit. Every
 * batch that moves a user's units loads them, so the newest batch ahead that
 * holds a user's figure has it exactly, including what it has not committed
 * yet; a user no batch ahead holds was moved by none, so the store's entries
 * (one short range) are exact.
 */
async function loadHeld(
  store: Store,
  skuId: string,
  ws: WorkingSet,
  ops: readonly Operation[],
  aheads: readonly Ahead[],
): Promise<void> {
  const sku = ws.get<SkuRecord>(keys.sku(skuId));
  if (sku === undefined || sku.maxPerUser === null) return;
  const unread: string[] = [];
  for (const userId of movingUsers(ws, ops)) {
    const ahead = aheads.findLast((batch) => batch.ws.heldUnits(userId) !== undefined);
    if (ahead) ws.loadHeld(userId, ahead.ws.heldUnits(userId));
    else unread.push(userId);
  }
  if (unread.length === 0) return;
  const ranges = await store.rangeMany<UserOrderEntry>(
    unread.map((userId) => {
      const prefix = keys.userSkuOrdersPrefix(userId, skuId);
      return { start: prefix, end: prefixEnd(prefix), limit: userSkuOrdersScanMax + 1 };
    }),
  );
  for (const [i, entries] of ranges.entries()) {
    // Past the scan bound the units stay unknown, and a reservation by that user is refused.
    if (entries.length <= userSkuOrdersScanMax) {
      ws.loadHeld(
        unread[i]!,
        entries.reduce((units, entry) => units + entry.value.units, 0),
      );
    }
  }
}
