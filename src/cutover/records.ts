// The cutover's own records, checked when read back from a store: an outbox
// entry, the outbox's identity, a mirror's resume point, the routing and a
// move. A record that is not what this code writes stops the work that read
// it with the key's name; it is never guessed at.
import type {
  MirrorResume,
  OutboxEntry,
  OutboxMeta,
  RoutingConfig,
  SkuRoute,
  StandaloneRecord,
  StoreKind,
} from '../layout.ts';
import type { Write } from '../store/contract.ts';

export const storeKinds: readonly StoreKind[] = ['lmdb', 'etcd'];

/** A record of the cutover that is not what hotstock writes. */
export class CutoverRecordError extends Error {
  constructor(what: string, value: unknown) {
    super(`${what} is not a record hotstock wrote: ${JSON.stringify(value)?.slice(0, 200)}`);
    this.name = 'CutoverRecordError';
  }
}

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

export function isStoreKind(value: unknown): value is StoreKind {
  return storeKinds.includes(value as StoreKind);
}

function isWrite(value: unknown): value is Write {
  if (!isObject(value) || typeof value.key !== 'string') return false;
  return (value.type === 'put' && 'value' in value) || value.type === 'delete';
}

export function assertOutboxMeta(value: unknown, where: string): asserts value is OutboxMeta {
  if (!isObject(value) || typeof value.stream !== 'string' || !isCount(value.trimmedThrough)) {
    throw new CutoverRecordError(`the outbox identity of the ${where} store`, value);
  }
}

export function assertOutboxEntry(value: unknown, key: string): asserts value is OutboxEntry {
  if (!isObject(value) || !isCount(value.atMs) || !Array.isArray(value.writes) || !value.writes.every(isWrite)) {
    throw new CutoverRecordError(`outbox entry ${key}`, value);
  }
}

export function assertMirrorResume(value: unknown, key: string): asserts value is MirrorResume {
  const partial = isObject(value) ? value.partial : undefined;
  const partialOk = partial === null || (isObject(partial) && isCount(partial.seq) && isCount(partial.offset));
  if (!isObject(value) || typeof value.stream !== 'string' || !isCount(value.appliedThrough) || !partialOk) {
    throw new CutoverRecordError(`mirror resume point ${key}`, value);
  }
}

export function assertStandalone(value: unknown, where: string): asserts value is StandaloneRecord {
  if (!isObject(value) || typeof value.allowed !== 'boolean' || typeof value.stream !== 'string') {
    throw new CutoverRecordError(`the standalone record of the ${where} store`, value);
  }
}

export function assertRoutingConfig(value: unknown): asserts value is RoutingConfig {
  const seed = isObject(value) ? value.seed : undefined;
  const seedOk =
    isObject(seed) && (seed.state === 'done' || (seed.state === 'copying' && typeof seed.stream === 'string'));
  const pair = isObject(value) ? value.pair : undefined;
  const pairOk = isObject(pair) && storeKinds.every((kind) => typeof pair[kind] === 'string');
  if (!isObject(value) || !isStoreKind(value.defaultStore) || !seedOk || !pairOk) {
    throw new CutoverRecordError('the routing configuration', value);
  }
}

export function assertSkuRoute(value: unknown, key: string): asserts value is SkuRoute {
  if (!isObject(value) || !isStoreKind(value.store) || typeof value.moveId !== 'string') {
    throw new CutoverRecordError(`route ${key}`, value);
  }
}

export const moveStates = ['pending', 'moving', 'rolling_back', 'done', 'failed'] as const;
export type MoveState = (typeof moveStates)[number];

/** Which SKUs a move takes: named ones, every SKU of a product, or a share of the catalog. */
export type MoveSelector = { skus: string[] } | { product: string } | { percent: number };

/** A move's durable state (`routing/move/<id>`). */
export interface MoveRecord {
  id: string;
  to: StoreKind;
  from: StoreKind;
  selector: MoveSelector;
  state: MoveState;
  createdAtMs: number;
  updatedAtMs: number;
  /** SKUs the selection held when the move began (0 before). */
  selected: number;
  /** SKUs this move has on `to` now. */
  moved: number;
  /** Why it rolled back. */
  error: string | null;
}

function isSelector(value: unknown): value is MoveSelector {
  if (!isObject(value)) return false;
  const names = Object.keys(value);
  if (names.length !== 1) return false;
  if (Array.isArray(value.skus)) return value.skus.every((sku) => typeof sku === 'string');
  if (typeof value.product === 'string') return true;
  return Number.isSafeInteger(value.percent) && (value.percent as number) >= 1 && (value.percent as number) <= 100;
}

export function assertMoveRecord(value: unknown, key: string): asserts value is MoveRecord {
  const ok =
    isObject(value) &&
    typeof value.id === 'string' &&
    isStoreKind(value.to) &&
    isStoreKind(value.from) &&
    value.to !== value.from &&
    isSelector(value.selector) &&
    moveStates.includes(value.state as MoveState) &&
    isCount(value.createdAtMs) &&
    isCount(value.updatedAtMs) &&
    isCount(value.selected) &&
    isCount(value.moved) &&
    (value.error === null || typeof value.error === 'string');
  if (!ok) throw new CutoverRecordError(`move ${key}`, value);
}
