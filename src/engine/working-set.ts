// A batch's private view of the store: reads come from one snapshot taken
// before the batch is decided, writes stay here until the batch commits. At
// commit time every key that was read becomes a version check, so if another
// writer (another instance, the sweeper) changed it meanwhile, the whole batch
// fails as a conflict and is decided again instead of overwriting that change.
import type { Entry, VersionCheck, Write } from '../store/contract.ts';

interface Slot {
  /** Version seen in the snapshot (0 = absent); becomes the commit's check. */
  readVersion: number | undefined;
  value: unknown;
  present: boolean;
  dirty: boolean;
}

export class WorkingSet {
  private readonly slots = new Map<string, Slot>();

  /** Records what the snapshot holds for `key` (undefined = absent). */
  load(key: string, entry: Entry | undefined): void {
    if (this.slots.has(key)) return;
    this.slots.set(key, {
      readVersion: entry?.version ?? 0,
      value: entry?.value,
      present: entry !== undefined,
      dirty: false,
    });
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** The value as this batch sees it; the key must have been loaded or written. */
  get<V>(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) throw new Error(`working set read of unloaded key ${JSON.stringify(key)}`);
    return slot.present ? (slot.value as V) : undefined;
  }

  /** The version the snapshot held, for If-Match and replay; 0 when absent. */
  version(key: string): number {
    return this.slots.get(key)?.readVersion ?? 0;
  }

  /** True once this batch has written the key, so its version will be the commit's revision. */
  writtenHere(key: string): boolean {
    return this.slots.get(key)?.dirty ?? false;
  }

  put(key: string, value: unknown): void {
    const slot = this.slots.get(key);
    if (slot === undefined) this.slots.set(key, { readVersion: undefined, value, present: true, dirty: true });
    else Object.assign(slot, { value, present: true, dirty: true });
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined)
      this.slots.set(key, { readVersion: undefined, value: undefined, present: false, dirty: true });
    else Object.assign(slot, { value: undefined, present: false, dirty: true });
  }

  /** Checks and writes so far; their sum is what the store's op limit counts. */
  opCount(): number {
    let ops = 0;
    for (const slot of this.slots.values()) ops += Number(slot.readVersion !== undefined) + Number(slot.dirty);
    return ops;
  }

  checks(): VersionCheck[] {
    const checks: VersionCheck[] = [];
    for (const [key, slot] of this.slots) {
      if (slot.readVersion !== undefined) checks.push({ key, version: slot.readVersion });
    }
    return checks;
  }

  writes(): Write[] {
    const writes: Write[] = [];
    for (const [key, slot] of this.slots) {
      if (!slot.dirty) continue;
      writes.push(slot.present ? { type: 'put', key, value: slot.value } : { type: 'delete', key });
    }
    return writes;
  }
}
