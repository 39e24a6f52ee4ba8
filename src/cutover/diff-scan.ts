// Two stores compared key by key: both are read in key order, page by page,
// and merged; every mirrored key (layout.ts `isMirrored`) whose value differs,
// or that only one store holds, is yielded. The mirror's initial copy
// (seed.ts) applies the differences; `hotstock reconcile` reports them.
import { isDeepStrictEqual } from 'node:util';
import { scanPageEntries } from '../constants.ts';
import { isMirrored, storeLocalPrefixes } from '../layout.ts';
import { type Entry, prefixEnd, type Store } from '../store/contract.ts';

export interface Difference {
  key: string;
  /** The key as the first store holds it; undefined when absent there. */
  left: Entry | undefined;
  right: Entry | undefined;
}

/** Jumps over store-local key ranges (an outbox may hold many entries). */
function skipLocal(start: string): string {
  for (const prefix of storeLocalPrefixes) if (start.startsWith(prefix)) return skipLocal(prefixEnd(prefix));
  return start;
}

/** Every mirrored entry of `store`, in key order. */
async function* mirroredEntries(store: Store): AsyncGenerator<Entry> {
  const end = prefixEnd('');
  let start = skipLocal('');
  for (;;) {
    const page = await store.range({ start, end, limit: scanPageEntries });
    for (const entry of page) if (isMirrored(entry.key)) yield entry;
    if (page.length < scanPageEntries) return;
    start = skipLocal(`${page.at(-1)!.key}\u0000`);
  }
}

/** JSON-equal: both stores hold JSON data, one decoded from msgpack (which keeps `undefined` fields), one from JSON. */
export function sameValue(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a) ?? 'null'), JSON.parse(JSON.stringify(b) ?? 'null'));
}

/** Keys whose mirrored value differs between `left` and `right`, in key order. */
export async function* differences(left: Store, right: Store): AsyncGenerator<Difference> {
  const leftEntries = mirroredEntries(left);
  const rightEntries = mirroredEntries(right);
  let a = await leftEntries.next();
  let b = await rightEntries.next();
  while (!a.done || !b.done) {
    const order = a.done ? 1 : b.done ? -1 : compareKeys(a.value.key, b.value.key);
    if (order < 0) {
      yield { key: a.value!.key, left: a.value!, right: undefined };
      a = await leftEntries.next();
    } else if (order > 0) {
      yield { key: b.value!.key, left: undefined, right: b.value! };
      b = await rightEntries.next();
    } else {
      if (!sameValue(a.value!.value, b.value!.value)) yield { key: a.value!.key, left: a.value!, right: b.value! };
      a = await leftEntries.next();
      b = await rightEntries.next();
    }
  }
}

/** Keys order by their UTF-8 bytes (the stores' order), which is code point order, not UTF-16 order. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Whether `store` holds any mirrored key: a store about to become a mirror must not. */
export async function holdsMirroredData(store: Store): Promise<string | undefined> {
  const first = await mirroredEntries(store).next();
  return first.done ? undefined : first.value.key;
}
