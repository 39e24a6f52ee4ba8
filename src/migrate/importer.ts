// Importing hotstock records (from the legacy importer or a `--transform`
// module) into the store exactly as the engine writes them, through the
// layout: the SKU record and its catalog index entry; the order record and
// the index entries it implies.
//
// The stream is in key order, so an order may arrive before its SKU. The SKU
// record's `reserved` and `sold` come from its orders: an order whose SKU is
// already imported moves that record's ledger (and its `total`, since the
// source's stock counted only units still available); an order whose SKU is
// not imported yet adds to a tally under `migrate/tally/`, which the SKU folds
// in when it arrives. Orders take their SKU's next sequence number either way.
import { idLengthMax, labelLengthMax, orderQtyMax, priceCentsMax, stockUnitsMax } from '../constants.ts';
import { assertSkuInvariants } from '../domain/ledger.ts';
import { holdsReservation, holdsSale } from '../domain/order-state.ts';
import { type CatalogEntry, type OrderRecord, type OrderState, orderStates, type SkuRecord } from '../domain/types.ts';
import { keys, writeNewOrder, writeSku } from '../layout.ts';
import type { Store, Write } from '../store/contract.ts';

/** A SKU as a source describes it: its catalog entry and the units still available. */
export interface SkuImport extends CatalogEntry {
  kind: 'sku';
  sku: string;
  available: number;
}

/** An order as a source describes it. `priceCents` defaults to its SKU's price when the SKU is already imported. */
export interface OrderImport {
  kind: 'order';
  id: string;
  sku: string;
  qty: number;
  userId: string;
  state: OrderState;
  createdAtMs: number;
  priceCents?: number;
}

export type ImportRecord = SkuImport | OrderImport;

/** Maps one source key/value to a record, or null to skip it. Throwing stops the migration, naming the key. */
export type RecordMapper = (entry: { key: Buffer; value: Buffer; keyText: string }) => ImportRecord | null;

interface Tally {
  reserved: number;
  sold: number;
  /** Orders of the SKU imported so far: the next one's seq. */
  orderSeq: number;
}

const emptyTally: Tally = { reserved: 0, sold: 0, orderSeq: 0 };

export const migrateKeys = {
  checkpoint: 'migrate/checkpoint',
  chunkPrefix: 'migrate/chunk/',
  chunk: (index: number) => `migrate/chunk/${String(index).padStart(10, '0')}`,
  tallyPrefix: 'migrate/tally/',
  tally: (sku: string) => `migrate/tally/${sku}`,
} as const;

const idPattern = /^[^\p{C}\p{Z}]+$/u;
const labelPattern = /^[^\p{C}]+$/u;

function checkId(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > idLengthMax || !idPattern.test(value)) {
    throw new Error(
      `${what} must be 1-${idLengthMax} printable characters without spaces, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkLabel(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > labelLengthMax || !labelPattern.test(value)) {
    throw new Error(`${what} must be 1-${labelLengthMax} printable characters, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkInteger(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Refuses a record the engine could not have written; the message names the field. */
export function validateRecord(record: ImportRecord): ImportRecord {
  if (record.kind === 'sku') {
    checkId('sku', record.sku);
    for (const field of ['product', 'size', 'color'] as const) checkLabel(field, record[field]);
    checkInteger('priceCents', record.priceCents, 0, priceCentsMax);
    if (record.maxPerUser !== null) checkInteger('maxPerUser', record.maxPerUser, 1, orderQtyMax);
    checkInteger('available', record.available, 0, stockUnitsMax);
    return record;
  }
  if (record.kind !== 'order') throw new Error(`kind must be "sku" or "order", got ${JSON.stringify(record)}`);
  checkId('order id', record.id);
  checkId('sku', record.sku);
  checkId('userId', record.userId);
  checkInteger('qty', record.qty, 1, orderQtyMax);
  if (!orderStates.includes(record.state)) throw new Error(`state must be one of ${orderStates.join(', ')}`);
  checkInteger('createdAtMs', record.createdAtMs, 0, Number.MAX_SAFE_INTEGER);
  if (record.priceCents !== undefined) checkInteger('priceCents', record.priceCents, 0, priceCentsMax);
  return record;
}

/** Reads through the writes of the chunk being built, so two records of one chunk see each other. */
class ChunkWrites {
  private readonly pending = new Map<string, Write>();
  private readonly store: Store;
  constructor(store: Store) {
    this.store = store;
  }
  async get<V>(key: string): Promise<V | undefined> {
    const write = this.pending.get(key);
    if (write !== undefined) return write.type === 'put' ? (write.value as V) : undefined;
    return (await this.store.get<V>(key))?.value;
  }
  put(key: string, value: unknown): void {
    this.pending.set(key, { type: 'put', key, value });
  }
  delete(key: string): void {
    this.pending.set(key, { type: 'delete', key });
  }
  writes(): Write[] {
    return [...this.pending.values()];
  }
}

export interface ImportOptions {
  reservationTtlMs: number;
}

/** The store writes that import `records` (in stream order) on top of what the store holds. */
export async function importWrites(
  store: Store,
  records: readonly ImportRecord[],
  options: ImportOptions,
): Promise<Write[]> {
  const chunk = new ChunkWrites(store);
  for (const record of records) {
    if (record.kind === 'sku') await importSku(chunk, record);
    else await importOrder(chunk, record, options);
  }
  return chunk.writes();
}

async function importSku(chunk: ChunkWrites, record: SkuImport): Promise<void> {
  if ((await chunk.get(keys.sku(record.sku))) !== undefined) throw new Error(`SKU ${record.sku} is imported twice`);
  const tally = (await chunk.get<Tally>(migrateKeys.tally(record.sku))) ?? emptyTally;
  const total = record.available + tally.reserved + tally.sold;
  const sku: SkuRecord = {
    sku: record.sku,
    product: record.product,
    size: record.size,
    color: record.color,
    priceCents: record.priceCents,
    maxPerUser: record.maxPerUser,
    total,
    reserved: tally.reserved,
    sold: tally.sold,
    orderSeq: tally.orderSeq,
    initialStock: total,
  };
  assertSkuInvariants(sku);
  writeSku(chunk, undefined, sku);
  chunk.delete(migrateKeys.tally(sku.sku));
}

async function importOrder(chunk: ChunkWrites, record: OrderImport, options: ImportOptions): Promise<void> {
  if ((await chunk.get(keys.order(record.id))) !== undefined) throw new Error(`order ${record.id} is imported twice`);
  const sku = await chunk.get<SkuRecord>(keys.sku(record.sku));
  const tally = sku === undefined ? ((await chunk.get<Tally>(migrateKeys.tally(record.sku))) ?? emptyTally) : undefined;
  const history: OrderRecord['history'] = [{ state: 'created', atMs: record.createdAtMs }];
  if (record.state !== 'created') history.push({ state: record.state, atMs: record.createdAtMs });
  const order: OrderRecord = {
    id: record.id,
    sku: record.sku,
    qty: record.qty,
    userId: record.userId,
    state: record.state,
    priceCents: record.priceCents ?? sku?.priceCents ?? 0,
    createdAtMs: record.createdAtMs,
    expiresAtMs: record.createdAtMs + options.reservationTtlMs,
    history,
    seq: sku?.orderSeq ?? tally!.orderSeq,
  };
  writeNewOrder(chunk, order);
  const reserved = holdsReservation(order.state) ? order.qty : 0;
  const sold = holdsSale(order.state) ? order.qty : 0;
  if (sku !== undefined) {
    // The source's stock counted only what was still available, so units held by orders add to the total.
    const next = {
      ...sku,
      total: sku.total + reserved + sold,
      reserved: sku.reserved + reserved,
      sold: sku.sold + sold,
      orderSeq: sku.orderSeq + 1,
    };
    assertSkuInvariants(next);
    writeSku(chunk, sku, next);
  } else {
    const next: Tally = {
      reserved: tally!.reserved + reserved,
      sold: tally!.sold + sold,
      orderSeq: tally!.orderSeq + 1,
    };
    chunk.put(migrateKeys.tally(order.sku), next);
  }
}
