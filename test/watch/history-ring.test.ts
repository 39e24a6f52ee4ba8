// The history ring: bounded, revision-indexed, and honest about what it covers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HistoryRing } from '../../src/watch/history.ts';

const entry = (revision: number) => ({
  revision,
  sku: `s${revision}`,
  product: 'p',
  frame: Buffer.from(`${revision}`),
});

test('the ring keeps the newest entries, covers from the last evicted revision, and reads ranges in order', () => {
  const ring = new HistoryRing(4, 10);
  assert.equal(ring.coveredFrom, 10);
  for (const revision of [11, 13, 14]) ring.push(entry(revision));
  assert.deepEqual(
    [...ring.between(10, 14)].map((e) => e.revision),
    [11, 13, 14],
  );
  for (const revision of [17, 18, 20]) ring.push(entry(revision));
  assert.equal(ring.size, 4);
  assert.equal(ring.coveredFrom, 13, 'evicting 11 and 13: everything after 13 is still here');
  assert.deepEqual(
    [...ring.between(13, 99)].map((e) => e.revision),
    [14, 17, 18, 20],
  );
  assert.deepEqual(
    [...ring.between(15, 18)].map((e) => e.revision),
    [17, 18],
  );
  assert.equal(ring.lastAtOrBelow(19), 18);
  assert.equal(ring.lastAtOrBelow(14), 14);
  assert.equal(ring.lastAtOrBelow(5), 13);
  assert.throws(() => ring.push(entry(19)), /history revision/);
});
