// A batch's private view of the store: reads come from the SKU's warm state
// and one round of reads taken before the batch is decided, writes stay here
// until the batch commits.
//
// What is checked at commit: the SKU record always (every commit that touches
// anything of a SKU also writes its record, so that one check covers every
// SKU-scoped key the batch read), plus the few keys a decision guards
// explicitly because another SKU's writer could write them too (a new order's
// id, an idempotency record) or because they were read before the batch (a
// transition's order, read to route it here).
import type { Entry, VersionCheck, Write } from '../store/contract.ts';

/**
 * The version of a key written by the batch committing ahead of this one (see
 * SkuWriter's pipeline): unknown until that commit gets its revision, which
 * `checks(aheadRevision)` then substitutes. It equals no version a client can
 * hold, so an If-Match against it fails, as it must: the key is changing.
 */
export const aheadVersion = -1;

interface Slot {
  /** Version when read (0 = absent, aheadVersion = written by the batch ahead); undefined for keys only written. */
  readVersion: number | undefined;
  /** Checked at commit. */
  guarded: boolean;
  dirty: boolean;
  present: boolean;
  value: unknown;
}

export class WorkingSet {
  private readonly slots = new Map<string, Slot>();
  /** Units each user holds of the batch's SKU, for users whose reservations this batch decides. */
  private readonly held = new Map<string, number>();
  private checkCount = 0;
  private writeCount = 0;

  /** Records what the store holds for `key` (undefined = absent). */
  load(key: string, entry: Entry | undefined, guarded = false): void {
    if (this.slots.has(key)) return;
    this.slots.set(key, {
      readVersion: entry?.version ?? 0,
      guarded: false,
      dirty: false,
      present: entry !== undefined,
      value: entry?.value,
    });
    if (guarded) this.guard(key);
  }

  /** Records a key as the batch committing ahead of this one leaves it. */
  loadAhead(key: string, written: { present: boolean; value: unknown }): void {
    if (this.slots.has(key)) return;
    this.slots.set(key, {
      // Deleted ahead means absent once that batch commits: version 0 is already known.
      readVersion: written.present ? aheadVersion : 0,
      guarded: false,
      dirty: false,
      present: written.present,
      value: written.value,
    });
  }

  /** What this batch wrote to `key`, for a batch layered on top of it; undefined if it did not write it. */
  written(key: string): { present: boolean; value: unknown } | undefined {
    const slot = this.slots.get(key);
    return slot?.dirty ? { present: slot.present, value: slot.value } : undefined;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  private slot(key: string): Slot {
    const slot = this.slots.get(key);
    if (slot === undefined) throw new Error(`working set read of unloaded key ${JSON.stringify(key)}`);
    return slot;
  }

  /** The value as this batch sees it; the key must have been loaded or written. */
  get<V>(key: string): V | undefined {
    const slot = this.slot(key);
    return slot.present ? (slot.value as V) : undefined;
  }

  /** The version the key had when read, for If-Match and replay; 0 when absent. */
  version(key: string): number {
    return this.slot(key).readVersion ?? 0;
  }

  /** Makes the commit check that `key` is still at the version this batch read. */
  guard(key: string): void {
    const slot = this.slot(key);
    if (slot.guarded || slot.readVersion === undefined) return;
    slot.guarded = true;
    this.checkCount++;
  }

  /** True once this batch has written the key, so its version will be the commit's revision. */
  writtenHere(key: string): boolean {
    return this.slots.get(key)?.dirty ?? false;
  }

  put(key: string, value: unknown): void {
    this.write(key, true, value);
  }

  delete(key: string): void {
    this.write(key, false, undefined);
  }

  private write(key: string, present: boolean, value: unknown): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { readVersion: undefined, guarded: false, dirty: false, present, value };
      this.slots.set(key, slot);
    }
    if (!slot.dirty) this.writeCount++;
    slot.dirty = true;
    slot.present = present;
    slot.value = value;
  }

  /** Records the units `userId` holds of the SKU before this batch (undefined: more entries than the scan reads). */
  loadHeld(userId: string, units: number | undefined): void {
    if (!this.held.has(userId) && units !== undefined) this.held.set(userId, units);
  }

  /** Units the user holds as this batch sees them; undefined when they were not (or could not be) loaded. */
  heldUnits(userId: string): number | undefined {
    return this.held.get(userId);
  }

  /** Moves a loaded user's units by a decision of this batch. */
  moveHeld(userId: string, delta: number): void {
    const units = this.held.get(userId);
    if (units !== undefined) this.held.set(userId, units + delta);
  }

  /** Every user's units as this batch leaves them, for a batch layered on top of it. */
  heldAfter(): ReadonlyMap<string, number> {
    return this.held;
  }

  /** Version checks the commit will carry. */
  checksCount(): number {
    return this.checkCount;
  }

  /** Writes the commit will carry. */
  writesCount(): number {
    return this.writeCount;
  }

  /** Version checks for the commit; `aheadRevision` is the revision the batch ahead committed at, if any. */
  checks(aheadRevision?: number): VersionCheck[] {
    const checks: VersionCheck[] = [];
    for (const [key, slot] of this.slots) {
      if (!slot.guarded) continue;
      let version = slot.readVersion ?? 0;
      if (version === aheadVersion) {
        if (aheadRevision === undefined) throw new Error(`check on ${JSON.stringify(key)} needs the revision ahead`);
        version = aheadRevision;
      }
      checks.push({ key, version });
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
