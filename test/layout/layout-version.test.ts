// A store carries its layout version. A store written with another layout
// (an earlier hotstock's, without the marker, or a marker naming another
// version) is refused at start, by `hotstock serve` and `hotstock check`,
// with a message that says what it is and what to do; it is never misread.
// The same holds for an etcd prefix.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureLayout, LayoutMismatch, layoutVersion } from '../../src/layout.ts';
import type { Write } from '../../src/store/contract.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { LmdbStore } from '../../src/store/lmdb-store.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import { runCheck, spawnServer, tempDataDir } from '../support/service.ts';

/** What a data directory of hotstock's first layout held: no marker, the SKU and its index entries. */
const layoutOneWrites: Write[] = [
  {
    type: 'put',
    key: 'sku/tee-m',
    value: {
      sku: 'tee-m',
      product: 'tee',
      size: 'M',
      color: 'red',
      priceCents: 900,
      maxPerUser: null,
      total: 5,
      reserved: 1,
      sold: 0,
    },
  },
  { type: 'put', key: 'idx/catalog/tee\u0000M\u0000red\u0000tee-m', value: '' },
  { type: 'put', key: 'user-units/tee-m\u0000u1', value: 1 },
];

async function dataDirWith(writes: Write[]): Promise<{ dir: string; remove: () => void }> {
  const data = tempDataDir('layout-version');
  const store = new LmdbStore({ dataDir: data.dir });
  try {
    assert.ok((await store.commit([], writes)).ok);
  } finally {
    await store.close();
  }
  return data;
}

async function refusedToServe(dataDir: string): Promise<string> {
  const error = await spawnServer(dataDir).then(
    () => assert.fail('the service started on a store of another layout'),
    (failure: Error) => failure,
  );
  return error.message;
}

describe('a store written with another layout is refused', () => {
  test('an earlier hotstock data directory (no marker): serve and check refuse it, saying what to do', async () => {
    const data = await dataDirWith(layoutOneWrites);
    try {
      const served = await refusedToServe(data.dir);
      assert.match(served, /written by an earlier hotstock, with data layout 1; this hotstock reads layout 2/);
      assert.match(served, /start this one on an empty --data-dir/);
      const checked = await runCheck(data.dir);
      assert.equal(checked.code, 2, checked.stdout + checked.stderr);
      assert.match(checked.stderr, /data layout 1/);
      assert.doesNotMatch(checked.stdout, /ledger exact/);
    } finally {
      data.remove();
    }
  });

  test('a marker naming another layout version', async () => {
    const data = await dataDirWith([{ type: 'put', key: 'layout', value: { version: layoutVersion + 1 } }]);
    try {
      assert.match(
        await refusedToServe(data.dir),
        new RegExp(`holds data layout ${layoutVersion + 1}; this hotstock reads layout ${layoutVersion}`),
      );
      const checked = await runCheck(data.dir);
      assert.equal(checked.code, 2);
    } finally {
      data.remove();
    }
  });

  test('a fresh data directory is marked with this layout, and accepted from then on', async () => {
    const data = tempDataDir('layout-version');
    const store = new LmdbStore({ dataDir: data.dir });
    try {
      assert.equal(await ensureLayout(store, { create: false }), 'empty', 'check does not mark');
      assert.equal(await store.get('layout'), undefined);
      assert.equal(await ensureLayout(store, { create: true }), 'ready');
      assert.deepEqual((await store.get('layout'))?.value, { version: layoutVersion });
      assert.equal(await ensureLayout(store, { create: false }), 'ready');
    } finally {
      await store.close();
      data.remove();
    }
  });
});

describe('on etcd', () => {
  let cluster: EtcdCluster;
  const stores: EtcdStore[] = [];
  before(async () => {
    cluster = await startEtcdCluster();
  });
  after(async () => {
    for (const store of stores) await store.close();
    await cluster?.stop();
  });
  const open = (prefix: string) => {
    const store = new EtcdStore({
      client: createEtcdClient({ endpoints: cluster.endpoints }),
      ownsClient: true,
      prefix,
      maxTxnOps: 128,
    });
    stores.push(store);
    return store;
  };

  test('a prefix holding the first layout is refused; a fresh prefix is marked once even by two instances at once', async () => {
    const old = open('old-layout/');
    assert.ok((await old.commit([], layoutOneWrites)).ok);
    await assert.rejects(ensureLayout(old, { create: true }), (error: Error) => {
      assert.ok(error instanceof LayoutMismatch);
      assert.match(error.message, /data layout 1/);
      return true;
    });
    const [first, second] = [open('fresh-layout/'), open('fresh-layout/')];
    assert.deepEqual(
      await Promise.all([ensureLayout(first, { create: true }), ensureLayout(second, { create: true })]),
      ['ready', 'ready'],
    );
    assert.deepEqual((await first.get('layout'))?.value, { version: layoutVersion });
  });
});
