// Must show 1: 200,000 keys (binary values, unicode and odd-byte keys, a few
// values near 1.5 MiB) copied by `hotstock migrate` while it is SIGKILLed at
// random points and resumed each time; then `--verify` passes and the source
// and the destination agree byte for byte.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import type { Manifest } from '../../src/migrate/checksum.ts';
import { RawDestination } from '../../src/migrate/raw-destination.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import {
  etcdClient,
  loadPairs,
  readEtcd,
  runMigrate,
  seededRandom,
  spawnMigrate,
  testSeed,
} from '../support/migrate.ts';
import { tempDataDir } from '../support/service.ts';

const keyCount = 200_000;
const bigValues = 4;
/** etcd refuses requests over 1.5 MiB; the key and the request's framing need a little room. */
const bigValueBytes = 1.5 * 1024 * 1024 - 1024;
const kills = 5;
const prefix = 'mig/✓/';

let cluster: EtcdCluster;
let client: Etcd3;
const seed = testSeed();
const data = tempDataDir('hotstock-migrate-kill');

function pairs(random: () => number): [Buffer, Buffer][] {
  const out: [Buffer, Buffer][] = [];
  const shapes = ['plain', 'unicode', 'nul', 'ff', 'bytes'] as const;
  for (let i = 0; i < keyCount; i++) {
    const id = i.toString(36).padStart(4, '0');
    const shape = shapes[i % shapes.length]!;
    const tail =
      shape === 'plain'
        ? Buffer.from(`sku:${id}`)
        : shape === 'unicode'
          ? Buffer.from(`ünïcødé/🐷/${id}/名前`)
          : shape === 'nul'
            ? Buffer.concat([Buffer.from([0x00]), Buffer.from(id), Buffer.from([0x00, 0x00])])
            : shape === 'ff'
              ? Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(id), Buffer.from([0xff])])
              : Buffer.concat([
                  Buffer.from(id),
                  Buffer.from(Array.from({ length: 8 }, () => Math.floor(random() * 256))),
                ]);
    const value = Buffer.from(Array.from({ length: Math.floor(random() * 48) }, () => Math.floor(random() * 256)));
    out.push([Buffer.concat([Buffer.from(prefix), tail]), value]);
  }
  for (let i = 0; i < bigValues; i++) {
    const value = Buffer.alloc(bigValueBytes - i * 7, i + 1);
    value[0] = 0x00;
    value[value.length - 1] = 0xff;
    out.push([Buffer.from(`${prefix}big/${i}`), value]);
  }
  return out;
}

before(async () => {
  process.stdout.write(`resume-after-kill: seed ${seed} (rerun with HOTSTOCK_TEST_SEED=${seed})\n`);
  cluster = await startEtcdCluster();
  client = etcdClient(cluster.endpoints);
  const random = seededRandom(seed);
  await loadPairs(client, pairs(random));
  // Neighbours outside the prefix must not be copied.
  await client.put('mig/✓').value('just before the prefix');
  await client.put('mig/✔/x').value('just after the prefix');
});

after(async () => {
  client?.close();
  await cluster?.stop();
  data.remove();
});

test('SIGKILLed at random points and resumed, the copy verifies and matches byte for byte', async () => {
  const random = seededRandom(seed + 1);
  const args = [
    '--etcd-endpoints',
    cluster.endpoints[0]!,
    '--prefix',
    prefix,
    '--data-dir',
    data.dir,
    '--chunk-size',
    '500',
  ];
  let killedMidCopy = 0;
  for (let i = 0; i < kills; i++) {
    const run = spawnMigrate([...args, '--resume']);
    // The first progress line comes with the first committed chunk; then a random wait.
    await run.waitFor(/migrate: \d+\/\d+ keys/).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 600)));
    run.child.kill('SIGKILL');
    const ended = await run.exited;
    if (ended === 'SIGKILL') killedMidCopy++;
    const progress = run.stderr().trim().split('\n').at(-1);
    process.stdout.write(`kill ${i + 1}: ended by ${ended}; last progress: ${progress}\n`);
  }
  assert.ok(killedMidCopy >= 3, `only ${killedMidCopy} of ${kills} kills landed before the copy finished`);

  const final = await runMigrate([...args, '--resume', '--verify']);
  process.stdout.write(final.stdout);
  assert.equal(final.code, 0, final.stderr);
  assert.match(final.stdout, /verify: \d+ keys in \d+ chunks at revision \d+: source and destination agree/);

  const manifest = JSON.parse(readFileSync(join(data.dir, 'migrate-manifest.json'), 'utf8')) as Manifest;
  const source = await readEtcd(client, Buffer.from(prefix), manifest.revision);
  assert.equal(source.length, keyCount + bigValues);
  assert.equal(manifest.keys, source.length);

  // Nothing twice, nothing skipped: chunks are contiguous, ascending, and add up to the source.
  assert.equal(
    manifest.chunks.reduce((sum, chunk) => sum + chunk.count, 0),
    source.length,
  );
  for (const [i, chunk] of manifest.chunks.entries()) {
    assert.equal(chunk.index, i);
    if (i > 0) {
      const previous = Buffer.from(manifest.chunks[i - 1]!.lastKey, 'base64');
      assert.ok(Buffer.compare(previous, Buffer.from(chunk.firstKey, 'base64')) < 0, `chunk ${i} overlaps`);
    }
  }

  // The checksum as the README defines it, computed here independently.
  const hash = createHash('sha256');
  for (const [key, value] of source) {
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(key.length, 0);
    lengths.writeUInt32BE(value.length, 4);
    hash.update(lengths.subarray(0, 4)).update(key).update(lengths.subarray(4)).update(value);
  }
  assert.equal(manifest.sha256, hash.digest('hex'));

  const destination = new RawDestination(data.dir, { readOnly: true });
  try {
    const copied = [...destination.entries(Buffer.from([0]), Buffer.from([0]))];
    assert.equal(copied.length, source.length, 'the destination holds exactly the source keys');
    for (const [i, [key, value]] of source.entries()) {
      assert.ok(copied[i]!.key.equals(key), `key ${i} differs`);
      assert.ok(copied[i]!.value.equals(value), `value of key ${key.toString('base64')} differs`);
    }
  } finally {
    await destination.close();
  }
});
