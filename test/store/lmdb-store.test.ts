// The LMDB store: the shared conformance suite, plus what only an embedded,
// on-disk store promises (persistence across reopen, read-only opens).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { prefixEnd, type Store, type Write } from '../../src/store/contract.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { storeConformanceSuite } from '../conformance/store-conformance.ts';

function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'hotstock-lmdb-test-'));
}

storeConformanceSuite('lmdb', async () => {
  const dataDir = freshDataDir();
  return {
    store: new LmdbStore({ dataDir }),
    reopen: async () => new LmdbStore({ dataDir }),
    cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
});

const put = (key: string, value: unknown): Write => ({ type: 'put', key, value });
const everything = { start: '', end: prefixEnd(''), limit: 1_000 };

/** Runs `body` with a fresh data dir; closes every store it opened and removes the dir. */
async function withDataDir(body: (dataDir: string, track: (store: LmdbStore) => LmdbStore) => Promise<void>) {
  const dataDir = freshDataDir();
  const opened: Store[] = [];
  const closed = new WeakSet<Store>();
  const track = (store: LmdbStore): LmdbStore => {
    opened.push(store);
    const close = store.close.bind(store);
    store.close = async () => {
      if (closed.has(store)) return;
      closed.add(store);
      await close();
    };
    return store;
  };
  try {
    await body(dataDir, track);
  } finally {
    for (const store of opened.reverse()) await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('LmdbStore', () => {
  it('a new store is empty at revision 0', () =>
    withDataDir(async (dataDir, track) => {
      const store = track(new LmdbStore({ dataDir }));
      assert.equal(store.kind, 'lmdb');
      assert.equal(await store.revision(), 0);
      assert.deepEqual(await store.range(everything), []);
      const first = await store.commit([], [put('k', 1)]);
      assert.deepEqual(first, { ok: true, revision: 1 });
    }));

  it('creates a missing data directory', () =>
    withDataDir(async (dataDir, track) => {
      const nested = join(dataDir, 'not', 'yet', 'there');
      const store = track(new LmdbStore({ dataDir: nested }));
      assert.ok((await store.commit([], [put('k', 1)])).ok);
      assert.equal((await store.get('k'))?.value, 1);
    }));

  it('data survives close and reopen', () =>
    withDataDir(async (dataDir, track) => {
      const writer = track(new LmdbStore({ dataDir }));
      const first = await writer.commit([], [put('sku/a', { available: 5 }), put('sku/b', { available: 0 })]);
      assert.ok(first.ok);
      const second = await writer.commit(
        [{ key: 'sku/a', version: first.revision }],
        [put('sku/a', { available: 4 }), { type: 'delete', key: 'sku/b' }, put('order/1\u0000x', ['é', 1])],
      );
      assert.ok(second.ok);
      const before = await writer.range(everything);
      await writer.close();

      const reader = track(new LmdbStore({ dataDir }));
      assert.deepEqual(await reader.range(everything), before);
      assert.deepEqual(before, [
        { key: 'order/1\u0000x', value: ['é', 1], version: second.revision },
        { key: 'sku/a', value: { available: 4 }, version: second.revision },
      ]);
      assert.equal(await reader.get('sku/b'), undefined);
      // Versions read back after reopen still guard commits.
      const stale = await reader.commit([{ key: 'sku/a', version: first.revision }], [put('sku/a', 'stale')]);
      assert.deepEqual(stale, { ok: false, conflictKeys: ['sku/a'] });
      const fresh = await reader.commit([{ key: 'sku/a', version: second.revision }], [put('sku/a', 'fresh')]);
      assert.ok(fresh.ok);
    }));

  it('the revision persists across reopen and keeps counting from there', () =>
    withDataDir(async (dataDir, track) => {
      const writer = track(new LmdbStore({ dataDir }));
      let last = 0;
      for (let i = 0; i < 5; i++) {
        const result = await writer.commit([], [put(`r/${i}`, i)]);
        assert.ok(result.ok);
        last = result.revision;
      }
      assert.equal(last, 5);
      await writer.close();

      const reopened = track(new LmdbStore({ dataDir }));
      assert.equal(await reopened.revision(), last);
      const received: number[] = [];
      reopened.subscribe('', (change) => received.push(change.revision));
      const next = await reopened.commit([], [put('r/next', true)]);
      assert.deepEqual(next, { ok: true, revision: last + 1 });
      assert.deepEqual(received, [last + 1], 'the feed of a reopened store starts after the stored revision');
      assert.equal((await reopened.get('r/next'))?.version, last + 1);
    }));

  it('a readOnly open reads what a writer committed, and refuses to write', () =>
    withDataDir(async (dataDir, track) => {
      const writer = track(new LmdbStore({ dataDir }));
      const written = await writer.commit([], [put('ro/a', { n: 1 }), put('ro/b', 'b')]);
      assert.ok(written.ok);
      await writer.close();

      const reader = track(new LmdbStore({ dataDir, readOnly: true }));
      assert.equal(await reader.revision(), written.revision);
      assert.deepEqual(await reader.get('ro/a'), { key: 'ro/a', value: { n: 1 }, version: written.revision });
      assert.deepEqual(await reader.getMany(['ro/b', 'ro/c']), [
        { key: 'ro/b', value: 'b', version: written.revision },
        undefined,
      ]);
      assert.deepEqual(
        (await reader.range({ start: 'ro/', end: prefixEnd('ro/'), limit: 10 })).map((entry) => entry.key),
        ['ro/a', 'ro/b'],
      );
      await assert.rejects(reader.commit([], [put('ro/c', 'nope')]));
      await reader.close();

      const again = track(new LmdbStore({ dataDir }));
      assert.equal(await again.get('ro/c'), undefined, 'the read-only store wrote nothing');
      assert.equal(await again.revision(), written.revision);
    }));
});
