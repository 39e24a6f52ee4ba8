// The destination of the legacy importer and of `--transform`: hotstock
// records written through the store contract (LmdbStore), so `hotstock serve`
// sells from the result and `hotstock check` verifies it. The checkpoint and
// each chunk's manifest entry are store keys under `migrate/`, written in the
// same commit as the chunk's records.
import { ensureLayout } from '../layout.ts';
import type { Entry } from '../store/contract.ts';
import { scanPrefix } from '../store/contract.ts';
import { LmdbStore } from '../store/lmdb-store.ts';
import type { Checkpoint, Destination } from './checkpoint.ts';
import type { ChunkEntry, KeyValue } from './checksum.ts';
import {
  type ImportOptions,
  type ImportRecord,
  importWrites,
  migrateKeys,
  type RecordMapper,
  validateRecord,
} from './importer.ts';

export class RecordsDestination implements Destination {
  readonly kind = 'records' as const;
  readonly store: LmdbStore;
  private readonly mapper: RecordMapper;
  private readonly options: ImportOptions;
  /** The store holds this layout (marked on the first commit of a new import); checked once. */
  private layoutChecked: Promise<unknown> | undefined;

  constructor(dataDir: string, mapper: RecordMapper, options: ImportOptions) {
    this.store = new LmdbStore({ dataDir });
    this.mapper = mapper;
    this.options = options;
  }

  private layout(): Promise<unknown> {
    this.layoutChecked ??= ensureLayout(this.store, { create: true });
    return this.layoutChecked;
  }

  async checkpoint(): Promise<Checkpoint | undefined> {
    return (await this.store.get<Checkpoint>(migrateKeys.checkpoint))?.value;
  }

  async chunks(): Promise<ChunkEntry[]> {
    const chunks: ChunkEntry[] = [];
    for await (const page of scanPrefix<ChunkEntry>(this.store, migrateKeys.chunkPrefix, 1_000)) {
      chunks.push(...page.map((entry: Entry<ChunkEntry>) => entry.value));
    }
    return chunks;
  }

  async commitChunk(
    entries: readonly KeyValue[],
    chunk: ChunkEntry,
    checkpoint: Checkpoint,
  ): Promise<{ skipped: number }> {
    await this.layout();
    const { records, skipped } = mapEntries(this.mapper, entries);
    const writes = await importWrites(this.store, records, this.options);
    writes.push({ type: 'put', key: migrateKeys.chunk(chunk.index), value: chunk });
    writes.push({
      type: 'put',
      key: migrateKeys.checkpoint,
      value: { ...checkpoint, skipped: checkpoint.skipped + skipped },
    });
    const result = await this.store.commit([], writes);
    if (!result.ok) throw new Error(`migration commit failed on ${result.conflictKeys.join(', ')}`);
    return { skipped };
  }

  async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.layout();
    await this.store.commit([], [{ type: 'put', key: migrateKeys.checkpoint, value: checkpoint }]);
  }

  /** SKUs whose orders were imported but which never arrived themselves. */
  async orphanTallies(): Promise<string[]> {
    const orphans: string[] = [];
    for await (const page of scanPrefix(this.store, migrateKeys.tallyPrefix, 1_000)) {
      orphans.push(...page.map((entry) => entry.key.slice(migrateKeys.tallyPrefix.length)));
    }
    return orphans;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

/** Maps and validates every entry; a failure names the source key. */
export function mapEntries(
  mapper: RecordMapper,
  entries: readonly KeyValue[],
): { records: ImportRecord[]; skipped: number } {
  const records: ImportRecord[] = [];
  let skipped = 0;
  for (const { key, value } of entries) {
    const keyText = key.toString('utf8');
    try {
      const record = mapper({ key, value, keyText });
      if (record === null || record === undefined) skipped++;
      else records.push(validateRecord(record));
    } catch (error) {
      throw new Error(`source key ${JSON.stringify(keyText)}: ${(error as Error).message}`);
    }
  }
  return { records, skipped };
}
