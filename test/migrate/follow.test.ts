// Must show 2: changes written to etcd during and after the bulk copy arrive
// through `--follow`; a follower restarted after SIGKILL loses none of the
// changes made while it was down; a compacted revision is the documented
// error (exit 3).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
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

const prefix = 'follow/';
const seededKeys = 20_000;
let cluster: EtcdCluster;
let client: Etcd3;
const seed = testSeed();
const data = tempDataDir('hotstock-migrate-follow');

before(async () => {
  process.stdout.write(`follow: seed ${seed} (rerun with HOTSTOCK_TEST_SEED=${seed})\n`);
  cluster = await startEtcdCluster();
  client = etcdClient(cluster.endpoints);
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i < seededKeys; i++) pairs.push([Buffer.from(`${prefix}seed/${i}`), Buffer.from(`v${i}`)]);
  await loadPairs(client, pairs);
  await client.put('elsewhere/1').value('not under the prefix');
});

after(async () => {
  client?.close();
  await cluster?.stop();
  data.remove();
});

/** A few puts, overwrites and deletes (one of them a multi-key txn); returns the revision after them. */
async function writeChanges(random: () => number, label: string, count: number): Promise<number> {
  let revision = 0;
  for (let i = 0; i < count; i++) {
    const key = Buffer.concat([
      Buffer.from(`${prefix}${label}/${i}/`),
      Buffer.from([0x00, 0xff, Math.floor(random() * 256)]),
    ]);
    revision = Number((await client.kv.put({ key, value: Buffer.from([i, 0, 255]) })).header.revision);
    if (i % 5 === 0) {
      revision = Number(
        (await client.kv.put({ key: Buffer.from(`${prefix}seed/${i}`), value: Buffer.from(`${label}-overwritten`) }))
          .header.revision,
      );
    }
    if (i % 7 === 0) {
      revision = Number((await client.kv.deleteRange({ key: Buffer.from(`${prefix}seed/${i + 1}`) })).header.revision);
    }
  }
  const txn = await client.kv.txn({
    compare: [],
    success: [
      { request_put: { key: Buffer.from(`${prefix}${label}/txn-a`), value: Buffer.from('a') } },
      { request_put: { key: Buffer.from(`${prefix}${label}/txn-b`), value: Buffer.from('b') } },
      { request_delete_range: { key: Buffer.from(`${prefix}seed/2`) } },
    ],
    failure: [],
  });
  await client.put('elsewhere/2').value('still not under the prefix');
  return Math.max(revision, Number(txn.header.revision));
}

function waitApplied(run: ReturnType<typeof spawnMigrate>, revision: number): Promise<unknown> {
  const pattern = /applied through revision (\d+)/g;
  return new Promise((resolve, reject) => {
    const check = () => {
      const seen = [...run.stderr().matchAll(pattern)].map((match) => Number(match[1]));
      if (seen.some((applied) => applied >= revision)) {
        clearInterval(timer);
        resolve(undefined);
      }
    };
    const timer = setInterval(check, 100);
    run.exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`follower exited (${code}):\n${run.stderr()}`));
    });
    setTimeout(() => {
      clearInterval(timer);
      reject(new Error(`revision ${revision} not applied in time:\n${run.stderr()}`));
    }, 60_000).unref();
  });
}

async function assertSameAsSource(): Promise<void> {
  const source = await readEtcd(client, Buffer.from(prefix));
  const destination = new RawDestination(data.dir, { readOnly: true });
  try {
    const copied = [...destination.entries(Buffer.from(prefix), Buffer.from('follow0'))];
    assert.equal(copied.length, source.length, 'destination and source hold the same number of keys');
    for (const [i, [key, value]] of source.entries()) {
      assert.ok(copied[i]!.key.equals(key) && copied[i]!.value.equals(value), `key ${key.toString('base64')} differs`);
    }
  } finally {
    await destination.close();
  }
}

test('changes during and after the copy arrive; a restarted follower loses none; compaction is exit 3', async () => {
  const random = seededRandom(seed);
  const args = [
    '--etcd-endpoints',
    cluster.endpoints[0]!,
    '--prefix',
    prefix,
    '--data-dir',
    data.dir,
    '--chunk-size',
    '100',
  ];
  const follower = spawnMigrate([...args, '--follow']);
  // During the bulk copy: the pinned revision is taken at start, so these come through the watch.
  await follower.waitFor(/migrate: \d+\/\d+ keys/);
  let last = await writeChanges(random, 'during', 30);
  const watching = await follower.waitFor(/follow: watching from revision (\d+)/);
  assert.ok(Number(watching[1]) <= last, 'some changes were written before the follower started watching');
  last = await writeChanges(random, 'after', 30);
  await waitApplied(follower, last);
  await assertFollowerState(follower);

  // Down while changes are written: the restarted follower resumes from its checkpoint.
  follower.child.kill('SIGKILL');
  await follower.exited;
  last = await writeChanges(random, 'while-down', 30);
  const restarted = spawnMigrate([...args, '--resume', '--follow']);
  await waitApplied(restarted, last);
  restarted.child.kill('SIGTERM');
  assert.equal(await restarted.exited, 0, restarted.stderr());
  assert.match(restarted.stdout(), /followed \d+ changes; applied through revision \d+/);
  await assertSameAsSource();

  const verified = await runMigrate([...args, '--verify']);
  process.stdout.write(verified.stdout);
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stdout, /source and destination agree/);

  // Changes made while the follower is down are compacted away: it must refuse, not skip them.
  await writeChanges(random, 'compacted', 5);
  const revision = Number((await client.kv.range({ key: Buffer.from('x'), count_only: true })).header.revision);
  await client.kv.compact({ revision, physical: true });
  const refused = await runMigrate([...args, '--resume', '--follow']);
  process.stdout.write(refused.stderr);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /etcd has compacted revision \d+/);
  assert.match(refused.stderr, /new --data-dir/);
});

async function assertFollowerState(follower: ReturnType<typeof spawnMigrate>): Promise<void> {
  assert.equal(follower.child.exitCode, null, 'the follower keeps running');
}
