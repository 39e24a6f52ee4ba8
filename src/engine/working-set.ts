// A batch's private view of the store: reads come from one snapshot taken
// before the batch is decided, writes stay here until the batch commits. At
// commit time every key a decision read becomes a version check, so if another
// writer (another instance, the sweeper) changed it meanwhile, the whole batch
// fails as a conflict and is decided again instead of overwriting that change.
import type { Entry, VersionCheck, Write } from '../store/contract.ts';

/**
 * The version of a key written by the batch committing ahead of this one (see
 * SkuWriter's pipeline): unknown until that commit gets its revision, which
 * `checks(aheadRevision)` then substitutes. It equals no version a client can
 * hold, so an If-Match against it fails, as it must: the key is changing.
 */
export const aheadVersion = -1;

interface Slot {
  /** Version in the snapshot (0 = absent, aheadVersion = written by the batch ahead); undefined for keys this batch only writes. */
  snapshotVersion: number | undefined;
  /** A decision read this key; keys loaded for operations left to a later batch are not checked. */
  checked: boolean;
  dirty: boolean;
  present: boolean;
  value: unknown;
}

export class WorkingSet {
  private readonly slots = new Map<string, Slot>();
  /** Checks plus writes so far, kept as they happen: the batch asks after every operation. */
  private ops = 0;

  /** Records what the snapshot holds for `key` (undefined = absent). */
  load(key: string, entry: Entry | undefined): void {
    if (this.slots.has(key)) return;
    this.slots.set(key, {
      snapshotVersion: entry?.version ?? 0,
      checked: false,
      dirty: false,
      present: entry !== undefined,
      value: entry?.value,
    });
  }

  /** Records a key as the batch committing ahead of this one leaves it. */
  loadAhead(key: string, written: { present: boolean; value: unknown }): void {
    if (this.slots.has(key)) return;
    this.slots.set(key, {
      // Deleted ahead means absent once that batch commits: version 0 is already known.
      snapshotVersion: written.present ? aheadVersion : 0,
      checked: false,
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

  private markRead(slot: Slot): void {
    if (slot.checked || slot.snapshotVersion === undefined) return;
    slot.checked = true;
    this.ops++;
  }

  /** The value as this batch sees it; the key must have been loaded or written. */
  get<V>(key: string): V | undefined {
    const slot = this.slot(key);
    this.markRead(slot);
    return slot.present ? (slot.value as V) : undefined;
  }

  /** The version the snapshot held, for If-Match and replay; 0 when absent. */
  version(key: string): number {
    const slot = this.slot(key);
    this.markRead(slot);
    return slot.snapshotVersion ?? 0;
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
      slot = { snapshotVersion: undefined, checked: false, dirty: false, present, value };
      this.slots.set(key, slot);
    }
    if (!slot.dirty) this.ops++;
    slot.dirty = true;
    slot.present = present;
    slot.value = value;
  }

  /** Checks plus writes the commit will carry: what a store's op limit counts. */
  opCount(): number {
    return this.ops;
  }

  /** Version checks for the commit; `aheadRevision` is the revision the batch ahead committed at, if any. */
  checks(aheadRevision?: number): VersionCheck[] {
    const checks: VersionCheck[] = [];
    for (const [key, slot] of this.slots) {
      if (!slot.checked) continue;
      let version = slot.snapshotVersion ?? 0;
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
