// The store conformance suite: what every implementation of the `Store`
// contract (src/store/contract.ts) must do. Each implementation's test file
// calls `storeConformanceSuite` with a factory that opens a fresh, empty store
// for every test; the suite registers node:test `describe`/`it` blocks.
//
// The suite asks nothing a distributed backend cannot give: revisions are
// compared relative to each other (never assumed consecutive or starting at
// 1), the change feed may deliver after `commit` resolves (the suite waits for
// it, within a bound), commits stay within `store.limits`, no commit writes a
// key twice, and every delete in the change-feed tests removes a key that
// exists (etcd reports no event for deleting an absent key).
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CommitResult,
  type CommittedChange,
  commitBytes,
  type Entry,
  prefixEnd,
  type Store,
  type VersionCheck,
  type Write,
} from '../../src/store/contract.ts';

export interface StoreFixture {
  /** A fresh store holding no keys. */
  store: Store;
  /**
   * Opens another `Store` over the same data, for backends whose data outlives
   * a `Store` object. The suite closes the previous store before calling it.
   */
  reopen?: () => Promise<Store>;
  /** Removes whatever the fixture created; called after the suite closed every store it got. */
  cleanup: () => Promise<void>;
}

export type OpenStore = () => Promise<StoreFixture>;

/** How long the suite waits for the change feed to catch up with a commit. */
const feedWaitMsMax = 10_000;
const feedPollMs = 5;
/** After unsubscribing, how long the suite watches for a delivery that should not come. */
const feedQuietMs = 100;
/** Entries a "whole store" range may return; every test stores far fewer. */
const scanLimit = 10_000;
/** Commits racing on one absent key. */
const racingCommits = 200;
/** Workers incrementing one counter by read-check-write, and increments per worker. */
const counterWorkers = 50;
const incrementsPerWorker = 4;
/** Attempts one worker may make before the test calls it a livelock. */
const workerAttemptsMax = 20_000;
/** Commits on disjoint keys issued at once. */
const disjointCommits = 100;

const put = (key: string, value: unknown): Write => ({ type: 'put', key, value });
const del = (key: string): Write => ({ type: 'delete', key });

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function hasUtf8Prefix(key: string, prefix: string): boolean {
  const k = Buffer.from(key, 'utf8');
  const p = Buffer.from(prefix, 'utf8');
  return k.length >= p.length && k.subarray(0, p.length).equals(p);
}

/** Whole-store range (every key the tests use). */
function everything(limit = scanLimit) {
  return { start: '', end: prefixEnd(''), limit };
}

async function commitOk(store: Store, checks: readonly VersionCheck[], writes: readonly Write[]): Promise<number> {
  const result = await store.commit(checks, writes);
  assert.ok(result.ok, `commit expected to succeed, got ${JSON.stringify(result)}`);
  assert.ok(Number.isSafeInteger(result.revision) && result.revision > 0, `bad revision ${result.revision}`);
  return result.revision;
}

function conflictKeysOf(result: CommitResult): string[] {
  assert.equal(result.ok, false, `commit expected to fail, got ${JSON.stringify(result)}`);
  assert.ok(!result.ok);
  assert.ok(Array.isArray(result.conflictKeys), 'conflictKeys must be an array');
  return [...result.conflictKeys].sort();
}

/** Puts `values` in as few commits as the limits allow; returns key -> revision. */
async function seed(store: Store, values: ReadonlyMap<string, unknown>): Promise<Map<string, number>> {
  const perCommit = Math.max(1, Math.min(store.limits.commitWritesMax, 64));
  const versions = new Map<string, number>();
  const all = [...values];
  for (let i = 0; i < all.length; i += perCommit) {
    const chunk = all.slice(i, i + perCommit);
    const writes = chunk.map(([key, value]) => put(key, value));
    assert.ok(commitBytes(writes) <= store.limits.commitBytesMax);
    const revision = await commitOk(store, [], writes);
    for (const [key] of chunk) versions.set(key, revision);
  }
  return versions;
}

function keysOf(entries: readonly Entry[]): string[] {
  return entries.map((entry) => entry.key);
}

function sameWrite(write: Write): Write {
  return write.type === 'put' ? put(write.key, write.value) : del(write.key);
}

/** Records the change feed, flagging any delivery out of revision order. */
function recordFeed(store: Store, prefix = '') {
  const changes: CommittedChange[] = [];
  const orderProblems: string[] = [];
  const stop = store.subscribe(prefix, (change) => {
    const previous = changes.at(-1);
    if (previous !== undefined && change.revision <= previous.revision) {
      orderProblems.push(`revision ${change.revision} delivered after ${previous.revision}`);
    }
    changes.push({ revision: change.revision, writes: change.writes.map(sameWrite) });
  });
  return {
    changes,
    orderProblems,
    stop,
    async waitFor(revision: number): Promise<void> {
      const deadline = Date.now() + feedWaitMsMax;
      while ((changes.at(-1)?.revision ?? 0) < revision) {
        assert.ok(
          Date.now() < deadline,
          `change feed did not reach revision ${revision} within ${feedWaitMsMax} ms (at ${changes.at(-1)?.revision})`,
        );
        await sleep(feedPollMs);
      }
    },
  };
}

interface Session {
  store: Store;
  /** Closes the current store; the session will not close it again. */
  close(): Promise<void>;
  /** Closes the current store and opens the same data again; undefined when the backend cannot. */
  reopen: (() => Promise<Store>) | undefined;
}

export function storeConformanceSuite(name: string, openStore: OpenStore): void {
  /** Runs `body` against a fresh store, then closes whatever is open and cleans up. */
  async function withStore(body: (session: Session) => Promise<void>): Promise<void> {
    const fixture = await openStore();
    let current = fixture.store;
    let open = true;
    const session: Session = {
      get store() {
        return current;
      },
      async close() {
        assert.ok(open, 'store already closed');
        open = false;
        await current.close();
      },
      reopen:
        fixture.reopen === undefined
          ? undefined
          : async () => {
              if (open) {
                open = false;
                await current.close();
              }
              current = await fixture.reopen!();
              open = true;
              return current;
            },
    };
    try {
      await body(session);
    } finally {
      try {
        if (open) await current.close();
      } finally {
        await fixture.cleanup();
      }
    }
  }

  describe(`store conformance: ${name}`, () => {
    describe('point reads', () => {
      it('a fresh store holds no keys and reads absent keys as undefined', () =>
        withStore(async ({ store }) => {
          assert.equal(await store.get('absent'), undefined);
          assert.deepEqual(await store.getMany(['absent', 'also absent']), [undefined, undefined]);
          assert.deepEqual(await store.range(everything()), []);
          const revision = await store.revision();
          assert.ok(Number.isSafeInteger(revision) && revision >= 0, `bad revision ${revision}`);
        }));

      it('get returns the value and the version of the commit that last wrote the key', () =>
        withStore(async ({ store }) => {
          const first = await commitOk(store, [], [put('k/a', { n: 1 }), put('k/b', 'bee')]);
          assert.deepEqual(await store.get('k/a'), { key: 'k/a', value: { n: 1 }, version: first });
          assert.deepEqual(await store.get('k/b'), { key: 'k/b', value: 'bee', version: first });
          assert.equal(await store.get('k/c'), undefined);
          assert.equal(await store.get('k/'), undefined, 'a prefix of a key is not the key');
          assert.equal(await store.get('k/a\u0000'), undefined, 'a key extended by NUL is another key');

          const second = await commitOk(store, [], [put('k/a', { n: 2 })]);
          assert.ok(second > first);
          assert.deepEqual(await store.get('k/a'), { key: 'k/a', value: { n: 2 }, version: second });
          assert.deepEqual(
            await store.get('k/b'),
            { key: 'k/b', value: 'bee', version: first },
            'a key the commit did not write keeps its version',
          );
        }));

      it('getMany answers in the order asked, with undefined holes for absent keys', () =>
        withStore(async ({ store }) => {
          const revision = await commitOk(store, [], [put('a', 1), put('b', 2), put('c', 3)]);
          const got = await store.getMany(['c', 'missing', 'a', 'b', 'a', 'b\u0000']);
          assert.deepEqual(got, [
            { key: 'c', value: 3, version: revision },
            undefined,
            { key: 'a', value: 1, version: revision },
            { key: 'b', value: 2, version: revision },
            { key: 'a', value: 1, version: revision },
            undefined,
          ]);
          assert.deepEqual(await store.getMany([]), []);
          assert.deepEqual(await store.getMany(['x', 'y']), [undefined, undefined]);
        }));
    });

    describe('range', () => {
      // In ascending UTF-8 byte order, which differs from JavaScript's UTF-16
      // order: U+FFFD and U+FF5A sort before U+1F600 in UTF-8, after it in UTF-16.
      const orderedKeys = [
        'A',
        'a',
        'a\u0000',
        'a\u0000\u0000',
        'a\u0000b',
        'a\u0001',
        'a/b',
        'ab',
        'ab\u0000c',
        'abc',
        'a\u007f',
        'aé',
        'a中',
        'a\uFFFD',
        'a😀',
        'b',
        'é',
        'é\u0000x',
        '中',
        'ｚ',
        '\uFFFD',
        '😀',
        '😀x',
        '😁',
      ];

      function shuffled(keys: readonly string[]): string[] {
        // Deterministic: reverse, then interleave halves.
        const reversed = [...keys].reverse();
        const half = Math.ceil(reversed.length / 2);
        const out: string[] = [];
        for (let i = 0; i < half; i++) {
          out.push(reversed[i]!);
          if (i + half < reversed.length) out.push(reversed[i + half]!);
        }
        return out;
      }

      async function seedOrdered(store: Store): Promise<Map<string, number>> {
        // Several commits, keys in scrambled order, each value naming its key.
        const scrambled = shuffled(orderedKeys);
        const versions = new Map<string, number>();
        for (let i = 0; i < scrambled.length; i += 5) {
          const chunk = scrambled.slice(i, i + 5);
          const revision = await commitOk(
            store,
            [],
            chunk.map((key) => put(key, { key })),
          );
          for (const key of chunk) versions.set(key, revision);
        }
        return versions;
      }

      it('the expected order is UTF-8 byte order (self-check of the fixture)', () => {
        assert.deepEqual([...orderedKeys].sort(utf8Compare), orderedKeys);
        assert.notDeepEqual([...orderedKeys].sort(), orderedKeys, 'UTF-16 order must differ, or the test proves less');
        assert.equal(new Set(orderedKeys).size, orderedKeys.length);
      });

      it('returns every key ascending by UTF-8 bytes, with values and versions', () =>
        withStore(async ({ store }) => {
          const versions = await seedOrdered(store);
          const entries = await store.range(everything());
          assert.deepEqual(keysOf(entries), orderedKeys);
          for (const entry of entries) {
            assert.deepEqual(entry, { key: entry.key, value: { key: entry.key }, version: versions.get(entry.key) });
          }
        }));

      it('covers [start, end): start inclusive, end exclusive', () =>
        withStore(async ({ store }) => {
          await seedOrdered(store);
          const keysIn = async (start: string, end: string) =>
            keysOf(await store.range({ start, end, limit: scanLimit }));
          assert.deepEqual(await keysIn('a\u0000', 'ab'), ['a\u0000', 'a\u0000\u0000', 'a\u0000b', 'a\u0001', 'a/b']);
          assert.deepEqual(await keysIn('ab', 'ab\u0000'), ['ab'], 'key + NUL is the first key after key');
          assert.deepEqual(await keysIn('ab', 'abc'), ['ab', 'ab\u0000c']);
          assert.deepEqual(await keysIn('ab\u0000', 'abc\u0000'), ['ab\u0000c', 'abc']);
          assert.deepEqual(await keysIn('a\uFFFD', 'b'), ['a\uFFFD', 'a😀']);
          assert.deepEqual(await keysIn('a\u0080', 'a\uFFFF'), ['aé', 'a中', 'a\uFFFD']);
          assert.deepEqual(await keysIn('\uFFFD', '😁'), ['\uFFFD', '😀', '😀x']);
          assert.deepEqual(await keysIn('ｚ', '\u{10FFFF}'), ['ｚ', '\uFFFD', '😀', '😀x', '😁']);
          assert.deepEqual(await keysIn('0', '9'), [], 'no key in range');
          assert.deepEqual(await keysIn('ab', 'ab'), [], 'empty when start equals end');
          assert.deepEqual(await keysIn('', 'a'), ['A']);
        }));

      it('returns at most limit entries, the first ones in order', () =>
        withStore(async ({ store }) => {
          await seedOrdered(store);
          for (const limit of [1, 2, 3, orderedKeys.length - 1, orderedKeys.length, orderedKeys.length + 5]) {
            assert.deepEqual(
              keysOf(await store.range(everything(limit))),
              orderedKeys.slice(0, limit),
              `limit ${limit}`,
            );
          }
          assert.deepEqual(keysOf(await store.range({ start: 'a\u0001', end: 'b', limit: 2 })), ['a\u0001', 'a/b']);

          // Paging with key + NUL as the next start visits every key exactly once.
          for (const pageSize of [1, 3, 7]) {
            const visited: string[] = [];
            let start = '';
            for (let pages = 0; pages <= orderedKeys.length; pages++) {
              const page = await store.range({ start, end: prefixEnd(''), limit: pageSize });
              assert.ok(page.length <= pageSize);
              visited.push(...keysOf(page));
              if (page.length < pageSize) break;
              start = `${page.at(-1)!.key}\u0000`;
            }
            assert.deepEqual(visited, orderedKeys, `paging by ${pageSize}`);
          }
        }));

      it('rangeMany answers several ranges in the order asked, each as range would', () =>
        withStore(async ({ store }) => {
          await seedOrdered(store);
          const queries = [
            everything(3),
            { start: 'a\u0001', end: 'b', limit: 2 },
            { start: '0', end: '9', limit: 5 },
            { start: 'ｚ', end: '\u{10FFFF}', limit: 10 },
          ];
          const many = await store.rangeMany(queries);
          assert.equal(many.length, queries.length);
          for (const [i, query] of queries.entries()) assert.deepEqual(many[i], await store.range(query), `query ${i}`);
          assert.deepEqual(await store.rangeMany([]), []);
        }));

      it('rangeMany reads more ranges than one etcd transaction holds, each in full', () =>
        withStore(async ({ store }) => {
          const values = new Map(Array.from({ length: 150 }, (_, i) => [`many/${String(i).padStart(3, '0')}/x`, i]));
          await seed(store, values);
          const queries = [...values.keys()].map((key) => {
            const prefix = key.slice(0, key.lastIndexOf('/') + 1);
            return { start: prefix, end: prefixEnd(prefix), limit: 2 };
          });
          const many = await store.rangeMany(queries);
          assert.deepEqual(
            many.map((entries) => entries.map((entry) => entry.value)),
            [...values.values()].map((value) => [value]),
          );
        }));

      it('prefixEnd(prefix) makes a range cover exactly the keys with that prefix', () =>
        withStore(async ({ store }) => {
          // Keys around the edges where incrementing the last UTF-16 unit goes wrong:
          // U+D7FF (next is U+E000), U+FFFF (next is U+10000), U+1F3FF (low
          // surrogate 0xDFFF), U+10FFFF (no next code point).
          const edgeKeys = [
            'p',
            'p\u0000',
            'p\uD7FF',
            'p\uD7FFx',
            'p\uE000',
            'p\uFFFD',
            'p\uFFFF',
            'p\uFFFFx',
            'p\u{10000}',
            'p\u{1F3FF}',
            'p\u{1F3FF}x',
            'p\u{1F400}',
            'p\u{10FFFF}',
            'p\u{10FFFF}z',
            'q',
          ];
          await seedOrdered(store);
          await seed(store, new Map(edgeKeys.map((key) => [key, { key }])));
          const allKeys = [...orderedKeys, ...edgeKeys].sort(utf8Compare);
          assert.deepEqual(keysOf(await store.range(everything())), allKeys, "prefixEnd('') covers every key");

          const prefixes = [
            'a',
            'a\u0000',
            'a\u0000\u0000',
            'ab',
            'ab\u0000',
            'abc',
            'a😀',
            '😀',
            'é',
            'é\u0000',
            '\uFFFD',
            'zz',
            'p',
            'p\uD7FF',
            'p\uFFFF',
            'p\u{1F3FF}',
            'p\u{10FFFF}',
          ];
          for (const prefix of prefixes) {
            const expected = allKeys.filter((key) => hasUtf8Prefix(key, prefix));
            const got = keysOf(await store.range({ start: prefix, end: prefixEnd(prefix), limit: scanLimit }));
            assert.deepEqual(got, expected, `prefix ${JSON.stringify(prefix)}`);
          }
          assert.ok(allKeys.filter((key) => hasUtf8Prefix(key, 'a')).length > 10, 'the prefixes are exercised');
        }));
    });

    describe('commit', () => {
      it('a check with version 0 means the key is absent', () =>
        withStore(async ({ store }) => {
          const created = await commitOk(store, [{ key: 'once', version: 0 }], [put('once', 1)]);
          assert.deepEqual(conflictKeysOf(await store.commit([{ key: 'once', version: 0 }], [put('once', 2)])), [
            'once',
          ]);
          assert.deepEqual(await store.get('once'), { key: 'once', value: 1, version: created });
          const updated = await commitOk(store, [{ key: 'once', version: created }], [put('once', 3)]);
          assert.ok(updated > created);
          assert.deepEqual(await store.get('once'), { key: 'once', value: 3, version: updated });
        }));

      it('a failing check applies none of the writes and names exactly the failed keys', () =>
        withStore(async ({ store }) => {
          const base = await commitOk(store, [], [put('x', 'x0'), put('y', 'y0'), put('z', 'z0')]);
          const before = await store.range(everything());
          const revisionBefore = await store.revision();
          assert.equal(revisionBefore, base);

          const checks: VersionCheck[] = [
            { key: 'x', version: base }, // holds
            { key: 'y', version: base + 5 }, // wrong version
            { key: 'w', version: 0 }, // holds: absent
            { key: 'z', version: 0 }, // fails: present
            { key: 'v', version: base }, // fails: absent
          ];
          const writes = [put('x', 'x1'), put('new', 'n1'), del('y'), put('z', 'z1')];
          const result = await store.commit(checks, writes);
          assert.deepEqual(Object.keys(result).sort(), ['conflictKeys', 'ok']);
          assert.deepEqual(conflictKeysOf(result), ['v', 'y', 'z']);

          assert.deepEqual(await store.range(everything()), before, 'no write applied');
          assert.equal(await store.get('new'), undefined);
          assert.equal(await store.revision(), revisionBefore, 'a failed commit takes no revision');

          // One bad check among many good ones is still all-or-nothing.
          const oneBad = await store.commit(
            [
              { key: 'x', version: base },
              { key: 'y', version: base },
              { key: 'z', version: base - 1 },
            ],
            [put('x', 'x2'), put('y', 'y2'), put('z', 'z2'), put('other', 1)],
          );
          assert.deepEqual(conflictKeysOf(oneBad), ['z']);
          assert.deepEqual(await store.range(everything()), before, 'no write applied');

          // The same commit with every check right applies everything.
          const applied = await commitOk(
            store,
            checks.filter((check) => !['y', 'z', 'v'].includes(check.key)),
            writes,
          );
          assert.deepEqual(await store.getMany(['x', 'new', 'y', 'z']), [
            { key: 'x', value: 'x1', version: applied },
            { key: 'new', value: 'n1', version: applied },
            undefined,
            { key: 'z', value: 'z1', version: applied },
          ]);
        }));

      it('checks guard keys the commit does not write', () =>
        withStore(async ({ store }) => {
          const guard = await commitOk(store, [], [put('guard', 'g')]);
          const ok = await commitOk(store, [{ key: 'guard', version: guard }], [put('target', 1)]);
          assert.deepEqual(await store.get('guard'), { key: 'guard', value: 'g', version: guard });
          assert.deepEqual(await store.get('target'), { key: 'target', value: 1, version: ok });
          await commitOk(store, [], [put('guard', 'g2')]);
          assert.deepEqual(conflictKeysOf(await store.commit([{ key: 'guard', version: guard }], [put('target', 2)])), [
            'guard',
          ]);
          assert.deepEqual(await store.get('target'), { key: 'target', value: 1, version: ok });
        }));

      it('every successful commit returns a strictly increasing revision, the version of every key it wrote', () =>
        withStore(async ({ store }) => {
          const expected = new Map<string, { value: unknown; version: number }>();
          let last = await store.revision();
          for (let i = 0; i < 30; i++) {
            // Commits of 1..4 writes over a small key space, some keys rewritten often.
            const keys = [
              ...new Set([`r/${i % 7}`, `r/${(i * 3) % 11}`, `r/${(i * 5) % 13}`, `r/x${i}`].slice(0, 1 + (i % 4))),
            ];
            const writes = keys.map((key) => put(key, { i, key }));
            const checks = keys.map((key) => ({ key, version: expected.get(key)?.version ?? 0 }));
            const revision = await commitOk(store, checks, writes);
            assert.ok(revision > last, `revision ${revision} after ${last}`);
            last = revision;
            for (const key of keys) expected.set(key, { value: { i, key }, version: revision });
            assert.equal(await store.revision(), revision, 'revision() is the last commit');
          }
          const entries = await store.range({ start: 'r/', end: prefixEnd('r/'), limit: scanLimit });
          assert.deepEqual(
            entries,
            [...expected]
              .sort(([a], [b]) => utf8Compare(a, b))
              .map(([key, { value, version }]) => ({ key, value, version })),
          );
        }));

      it('deletes remove keys; afterwards a version 0 check holds and the old version does not', () =>
        withStore(async ({ store }) => {
          const created = await commitOk(store, [], [put('d/1', 1), put('d/2', 2), put('d/3', 3)]);
          const deleted = await commitOk(store, [{ key: 'd/2', version: created }], [del('d/2'), del('d/3')]);
          assert.ok(deleted > created);
          assert.equal(await store.revision(), deleted);
          assert.equal(await store.get('d/2'), undefined);
          assert.deepEqual(await store.getMany(['d/1', 'd/2', 'd/3']), [
            { key: 'd/1', value: 1, version: created },
            undefined,
            undefined,
          ]);
          assert.deepEqual(keysOf(await store.range({ start: 'd/', end: prefixEnd('d/'), limit: scanLimit })), ['d/1']);

          assert.deepEqual(
            conflictKeysOf(await store.commit([{ key: 'd/2', version: created }], [put('d/2', 'stale')])),
            ['d/2'],
          );
          assert.equal(await store.get('d/2'), undefined);
          const recreated = await commitOk(store, [{ key: 'd/2', version: 0 }], [put('d/2', 'again')]);
          assert.ok(recreated > deleted);
          assert.deepEqual(await store.get('d/2'), { key: 'd/2', value: 'again', version: recreated });
        }));

      it('a commit may put some keys and delete others atomically', () =>
        withStore(async ({ store }) => {
          const first = await commitOk(store, [], [put('m/a', 'a'), put('m/b', 'b')]);
          const second = await commitOk(
            store,
            [
              { key: 'm/a', version: first },
              { key: 'm/c', version: 0 },
            ],
            [del('m/a'), put('m/c', 'c'), put('m/b', 'b2')],
          );
          assert.deepEqual(await store.range({ start: 'm/', end: prefixEnd('m/'), limit: scanLimit }), [
            { key: 'm/b', value: 'b2', version: second },
            { key: 'm/c', value: 'c', version: second },
          ]);
        }));

      it('revision() matches the last successful commit and is unchanged by failed ones', () =>
        withStore(async ({ store }) => {
          const start = await store.revision();
          const one = await commitOk(store, [], [put('rv', 1)]);
          assert.ok(one > start);
          assert.equal(await store.revision(), one);
          conflictKeysOf(await store.commit([{ key: 'rv', version: 0 }], [put('rv', 2)]));
          assert.equal(await store.revision(), one);
          const two = await commitOk(store, [{ key: 'rv', version: one }], [put('rv', 3)]);
          assert.ok(two > one);
          assert.equal(await store.revision(), two);
        }));
    });

    describe('concurrent commits', () => {
      it(`${racingCommits} concurrent commits guarded on one absent key: exactly one wins`, () =>
        withStore(async ({ store }) => {
          const results = await Promise.all(
            Array.from({ length: racingCommits }, (_, i) =>
              store.commit([{ key: 'race', version: 0 }], [put('race', { winner: i }), put(`race/${i}`, i)]),
            ),
          );
          const winners = results.flatMap((result, i) => (result.ok ? [{ i, revision: result.revision }] : []));
          assert.equal(winners.length, 1, `exactly one winner, got ${winners.length}`);
          const winner = winners[0]!;
          for (const [i, result] of results.entries()) {
            if (i !== winner.i) assert.deepEqual(conflictKeysOf(result), ['race']);
          }
          assert.deepEqual(await store.get('race'), {
            key: 'race',
            value: { winner: winner.i },
            version: winner.revision,
          });
          assert.deepEqual(await store.range({ start: 'race/', end: prefixEnd('race/'), limit: scanLimit }), [
            { key: `race/${winner.i}`, value: winner.i, version: winner.revision },
          ]);
          assert.equal(await store.revision(), winner.revision);
        }));

      it(`a counter incremented by read-check-write from ${counterWorkers} concurrent workers ends exact`, (t: TestContext) =>
        withStore(async ({ store }) => {
          const revisions: number[] = [];
          let conflicts = 0;
          async function worker(id: number): Promise<void> {
            let done = 0;
            for (let attempt = 0; done < incrementsPerWorker; attempt++) {
              assert.ok(attempt < workerAttemptsMax, `worker ${id} made ${attempt} attempts (livelock?)`);
              const current = await store.get<number>('counter');
              const count = current?.value ?? 0;
              const result = await store.commit(
                [{ key: 'counter', version: current?.version ?? 0 }],
                [put('counter', count + 1)],
              );
              if (result.ok) {
                revisions.push(result.revision);
                done++;
              } else {
                assert.deepEqual(result.conflictKeys, ['counter']);
                conflicts++;
              }
            }
          }
          await Promise.all(Array.from({ length: counterWorkers }, (_, id) => worker(id)));
          const total = counterWorkers * incrementsPerWorker;
          const final = await store.get<number>('counter');
          assert.equal(final?.value, total);
          assert.equal(new Set(revisions).size, total, 'every increment got its own revision');
          assert.equal(final?.version, Math.max(...revisions));
          assert.equal(await store.revision(), Math.max(...revisions));
          t.diagnostic(`${conflicts} conflicts retried`);
        }));

      it(`${disjointCommits} concurrent commits on disjoint keys all succeed with distinct revisions`, () =>
        withStore(async ({ store }) => {
          const results = await Promise.all(
            Array.from({ length: disjointCommits }, (_, i) =>
              store.commit([{ key: `own/${i}`, version: 0 }], [put(`own/${i}`, i)]),
            ),
          );
          const revisions = results.map((result) => {
            assert.ok(result.ok, JSON.stringify(result));
            return result.revision;
          });
          assert.equal(new Set(revisions).size, disjointCommits);
          const entries = await store.getMany(Array.from({ length: disjointCommits }, (_, i) => `own/${i}`));
          assert.deepEqual(
            entries,
            revisions.map((revision, i) => ({ key: `own/${i}`, value: i, version: revision })),
          );
          assert.equal(await store.revision(), Math.max(...revisions));
        }));
    });

    describe('change feed', () => {
      it('delivers every successful commit once, in revision order, with its writes; never a failed one', () =>
        withStore(async ({ store }) => {
          const before = await commitOk(store, [], [put('f/seen-before', 0)]);
          const feed = recordFeed(store);
          const revisionSeenByListener: Promise<number>[] = [];
          const stopProbe = store.subscribe('', () => {
            revisionSeenByListener.push(store.revision());
          });
          const expected: CommittedChange[] = [];
          const commit = async (checks: VersionCheck[], writes: Write[]) => {
            const result = await store.commit(checks, writes);
            if (result.ok) expected.push({ revision: result.revision, writes });
            return result;
          };

          const a = await commit([], [put('f/a', { v: 1 }), put('f/b', [1, 'two'])]);
          assert.ok(a.ok);
          assert.equal((await commit([{ key: 'f/a', version: 0 }], [put('f/a', 'never')])).ok, false);
          assert.ok((await commit([{ key: 'f/a', version: a.revision }], [put('f/a', { v: 2 }), del('f/b')])).ok);
          assert.equal((await commit([{ key: 'f/b', version: a.revision }], [put('f/c', 'never')])).ok, false);
          // Concurrent commits: one winner on a shared key plus disjoint ones.
          const racing = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              i % 2 === 0
                ? commit([{ key: 'f/race', version: 0 }], [put('f/race', i)])
                : commit([], [put(`f/own/${i}`, { i })]),
            ),
          );
          assert.equal(racing.filter((result) => result.ok).length, 11);
          assert.ok((await commit([], [del('f/seen-before'), put('f/unicode', 'é😀\u0000')])).ok);

          expected.sort((x, y) => x.revision - y.revision);
          const last = expected.at(-1)!.revision;
          await feed.waitFor(last);
          // A closing commit: anything delivered twice or late would arrive out of order before it.
          const closing = await commit([], [put('f/closing', true)]);
          assert.ok(closing.ok);
          await feed.waitFor(closing.revision);
          feed.stop();
          stopProbe();

          assert.deepEqual(feed.orderProblems, []);
          assert.ok(
            feed.changes.every((change) => change.revision > before),
            'nothing from before subscribe',
          );
          assert.deepEqual(feed.changes, expected);
          assert.equal(expected.length, 15);
          const seen = await Promise.all(revisionSeenByListener);
          assert.equal(seen.length, expected.length);
          for (const [i, revision] of seen.entries()) {
            assert.ok(revision >= expected[i]!.revision, 'a delivered commit is visible to readers');
          }
        }));

      it('every subscriber gets every commit; unsubscribe stops delivery to that listener only', () =>
        withStore(async ({ store }) => {
          const leaving = recordFeed(store);
          const staying = recordFeed(store);
          const first = await commitOk(store, [], [put('u/1', 1)]);
          await leaving.waitFor(first);
          await staying.waitFor(first);
          leaving.stop();
          leaving.stop(); // idempotent

          const later: number[] = [];
          for (let i = 2; i <= 5; i++) later.push(await commitOk(store, [], [put(`u/${i}`, i)]));
          await staying.waitFor(later.at(-1)!);
          await sleep(feedQuietMs);

          assert.deepEqual(
            leaving.changes.map((change) => change.revision),
            [first],
          );
          assert.deepEqual(
            staying.changes.map((change) => change.revision),
            [first, ...later],
          );
          staying.stop();
          const afterAll = await commitOk(store, [], [put('u/6', 6)]);
          await sleep(feedQuietMs);
          assert.ok(afterAll > later.at(-1)!);
          assert.equal(staying.changes.length, 5, 'no delivery after every listener left');
        }));

      it('a subscription to a prefix gets the commits writing under it, with those writes only', () =>
        withStore(async ({ store }) => {
          const skus = recordFeed(store, 'p/sku/');
          const other = recordFeed(store, 'p/other/');
          const everything = recordFeed(store);
          const mixed = await commitOk(store, [], [put('p/order/1', 1), put('p/sku/a', 'a1'), put('p/skull', 'x')]);
          const ordersOnly = await commitOk(store, [], [put('p/order/2', 2)]);
          const removal = await commitOk(store, [], [del('p/sku/a'), put('p/other/b', 'b')]);
          await everything.waitFor(removal);
          await skus.waitFor(removal);
          await other.waitFor(removal);
          await sleep(feedQuietMs);
          for (const feed of [skus, other, everything]) {
            assert.deepEqual(feed.orderProblems, []);
            feed.stop();
          }
          assert.deepEqual(skus.changes, [
            { revision: mixed, writes: [put('p/sku/a', 'a1')] },
            { revision: removal, writes: [del('p/sku/a')] },
          ]);
          assert.deepEqual(other.changes, [{ revision: removal, writes: [put('p/other/b', 'b')] }]);
          assert.deepEqual(
            everything.changes.map((change) => change.revision),
            [mixed, ordersOnly, removal],
          );
        }));
    });

    describe('values', () => {
      const values: [string, unknown][] = [
        ['v/object', { a: 1, b: { c: [1, 2, { d: 'deep' }], e: null }, f: true, g: false, h: 'text' }],
        ['v/array', [1, 'two', null, true, false, [], {}, [[3]], { x: [4] }]],
        ['v/empty-object', {}],
        ['v/empty-array', []],
        ['v/string', 'plain'],
        ['v/empty-string', ''],
        ['v/unicode', 'é 中文 😀 🏿 \u0000 nul, \u200F rtl, combining e\u0301, \uFFFD, \u{10FFFF}'],
        ['v/zero', 0],
        ['v/int', 42],
        ['v/negative', -17],
        ['v/float', 1.5],
        ['v/small', 1e-7],
        ['v/huge', 1e300],
        ['v/max-safe', Number.MAX_SAFE_INTEGER],
        ['v/min-safe', Number.MIN_SAFE_INTEGER],
        ['v/large-int', 2 ** 40 + 3],
        ['v/null', null],
        ['v/true', true],
        ['v/false', false],
        ['v/numbers-in-object', { n: -0.25, big: 2 ** 53 - 1, list: [0, -1, Math.PI, 2.5e-3] }],
      ];

      it('round-trip through get, getMany, range and the change feed', () =>
        withStore(async ({ store }) => {
          const feed = recordFeed(store);
          const revision = await commitOk(
            store,
            [],
            values.map(([key, value]) => put(key, value)),
          );
          for (const [key, value] of values) {
            assert.deepEqual(await store.get(key), { key, value, version: revision }, key);
          }
          assert.deepEqual(
            await store.getMany(values.map(([key]) => key)),
            values.map(([key, value]) => ({ key, value, version: revision })),
          );
          assert.deepEqual(
            await store.range({ start: 'v/', end: prefixEnd('v/'), limit: scanLimit }),
            [...values]
              .sort(([a], [b]) => utf8Compare(a, b))
              .map(([key, value]) => ({ key, value, version: revision })),
          );
          await feed.waitFor(revision);
          feed.stop();
          assert.deepEqual(feed.changes, [{ revision, writes: values.map(([key, value]) => put(key, value)) }]);
        }));

      it('the store keeps its own copy of a value', () =>
        withStore(async ({ store }) => {
          const value = { list: [1, 2], nested: { n: 1 } };
          const revision = await commitOk(store, [], [put('copy', value)]);
          value.list.push(3);
          value.nested.n = 99;
          const read = await store.get<{ list: number[]; nested: { n: number } }>('copy');
          assert.deepEqual(read, { key: 'copy', value: { list: [1, 2], nested: { n: 1 } }, version: revision });
          read!.value.list.push(4);
          read!.value.nested.n = -1;
          assert.deepEqual((await store.get('copy'))?.value, { list: [1, 2], nested: { n: 1 } });
        }));
    });

    describe('limits and lifecycle', () => {
      it('exposes positive limits and its kind', () =>
        withStore(async ({ store }) => {
          assert.ok(store.kind === 'lmdb' || store.kind === 'etcd', `kind ${store.kind}`);
          const { commitChecksMax, commitWritesMax, commitBytesMax } = store.limits;
          assert.ok(Number.isSafeInteger(commitChecksMax) && commitChecksMax > 1, `commitChecksMax ${commitChecksMax}`);
          assert.ok(Number.isSafeInteger(commitWritesMax) && commitWritesMax > 1, `commitWritesMax ${commitWritesMax}`);
          assert.ok(Number.isSafeInteger(commitBytesMax) && commitBytesMax > 0, `commitBytesMax ${commitBytesMax}`);
        }));

      it('accepts a commit of exactly commitChecksMax checks and commitWritesMax writes', () =>
        withStore(async ({ store }) => {
          // LMDB's limits are far above what a test needs to prove; etcd's are exactly its own.
          const writeCount = Math.min(store.limits.commitWritesMax, 4_096);
          const checkCount = Math.min(store.limits.commitChecksMax, 4_096);
          const key = (i: number) => `ops/${String(i).padStart(8, '0')}`;
          const writes = Array.from({ length: writeCount }, (_, i) => put(key(i), i));
          const checks = Array.from({ length: checkCount }, (_, i) => ({ key: `guard/${i}`, version: 0 }));
          assert.ok(commitBytes(writes) <= store.limits.commitBytesMax, 'fixture fits the byte limit');
          const revision = await commitOk(store, checks, writes);
          const entries = await store.range({ start: 'ops/', end: prefixEnd('ops/'), limit: writeCount + 1 });
          assert.equal(entries.length, writeCount);
          assert.deepEqual(entries[0], { key: key(0), value: 0, version: revision });
          assert.deepEqual(entries.at(-1), { key: key(writeCount - 1), value: writeCount - 1, version: revision });
        }));

      it('refuses a commit beyond commitWritesMax or commitChecksMax and applies none of it', () =>
        withStore(async ({ store }) => {
          const revision = await store.revision();
          const writes = Array.from({ length: store.limits.commitWritesMax + 1 }, (_, i) => put(`over/${i}`, i));
          await assert.rejects(store.commit([], writes), 'an over-limit commit must not resolve');
          const checks = Array.from({ length: store.limits.commitChecksMax + 1 }, (_, i) => ({
            key: `guard/${i}`,
            version: 0,
          }));
          await assert.rejects(store.commit(checks, [put('over/one', 1)]), 'too many checks must not resolve');
          assert.deepEqual(await store.range({ start: 'over/', end: prefixEnd('over/'), limit: 10 }), []);
          assert.equal(await store.revision(), revision);
        }));

      it('close() resolves', () =>
        withStore(async (session) => {
          await commitOk(session.store, [], [put('c', 1)]);
          await session.close();
        }));

      it('data, versions and revision survive close and reopen', async (t: TestContext) =>
        withStore(async (session) => {
          if (session.reopen === undefined) {
            t.skip('the fixture cannot reopen');
            return;
          }
          const first = await commitOk(
            session.store,
            [],
            [put('keep/a', { a: 1 }), put('keep/b', 'b'), put('gone', 0)],
          );
          const second = await commitOk(session.store, [], [put('keep/b', 'b2'), del('gone')]);
          const before = await session.store.range(everything());
          const reopened = await session.reopen();
          assert.deepEqual(await reopened.range(everything()), before);
          assert.deepEqual(before, [
            { key: 'keep/a', value: { a: 1 }, version: first },
            { key: 'keep/b', value: 'b2', version: second },
          ]);
          assert.equal(await reopened.revision(), second);
          const third = await commitOk(reopened, [{ key: 'keep/b', version: second }], [put('keep/b', 'b3')]);
          assert.ok(third > second, 'revisions keep increasing after reopen');
        }));
    });
  });
}
