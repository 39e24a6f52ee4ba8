// The migration checksum's building blocks: the resumable SHA-256 agrees with
// node:crypto however the input is split and however often its state is saved
// and restored; frames are laid out as the README defines; prefix ranges.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeFrames } from '../../src/migrate/checksum.ts';
import { Sha256 } from '../../src/migrate/sha256.ts';
import { keyAfter, prefixRangeEnd } from '../../src/migrate/source.ts';

test('a saved and restored SHA-256 continues exactly', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), (parts) => {
      let hash = new Sha256();
      const reference = createHash('sha256');
      for (const part of parts) {
        hash = Sha256.restore(JSON.parse(JSON.stringify(hash.save())));
        hash.update(part);
        reference.update(part);
      }
      assert.equal(hash.digestHex(), reference.digest('hex'));
    }),
    { numRuns: 300 },
  );
  assert.equal(new Sha256().digestHex(), createHash('sha256').digest('hex'));
});

test('frames are uint32be(key length) key uint32be(value length) value', () => {
  const frames = encodeFrames([
    { key: Buffer.from([0x00, 0xff]), value: Buffer.from('v') },
    { key: Buffer.from('k'), value: Buffer.alloc(0) },
  ]);
  assert.deepEqual([...frames], [0, 0, 0, 2, 0x00, 0xff, 0, 0, 0, 1, 0x76, 0, 0, 0, 1, 0x6b, 0, 0, 0, 0]);
});

test('prefix ranges end after the last key with the prefix', () => {
  assert.deepEqual(prefixRangeEnd(Buffer.from('ab')), Buffer.from('ac'));
  assert.deepEqual(prefixRangeEnd(Buffer.from([0x61, 0xff, 0xff])), Buffer.from([0x62]));
  assert.deepEqual(prefixRangeEnd(Buffer.from([0xff])), Buffer.from([0]));
  assert.deepEqual(prefixRangeEnd(Buffer.alloc(0)), Buffer.from([0]));
  assert.deepEqual(keyAfter(Buffer.from('a')), Buffer.from([0x61, 0]));
});
