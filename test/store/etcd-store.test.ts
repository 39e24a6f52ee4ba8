// The etcd store: the shared conformance suite against a real etcd, plus what
// only a remote, shared, compacting backend adds: namespaces, a change feed
// that survives a lost stream, compaction gaps, and etcd's transaction limits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { etcdMaxTxnOpsDefault } from '../../src/constants.ts';
import { type CommittedChange, type ChangeFeedGap, prefixEnd, type Write } from '../../src/store/contract.ts';
import { createEtcdClient, EtcdStore } from '../../src/store/etcd-store.ts';
import { storeConformanceSuite } from '../conformance/store-conformance.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';

let cluster: EtcdCluster;
let namespaceSequence = 0;

function freshPrefix(): string {
  namespaceSequence++;
  return `test-${process.pid}-${namespaceSequence}/`;
}

function openStore(prefix: string): EtcdStore {
  return new EtcdStore({
    client: createEtcdClient({ endpoints: cluster.endpoints }),
    ownsClient: true,
    prefix,
    maxTxnOps: etcdMaxTxnOpsDefault,
  });
}

before(async () => {
  cluster = await startEtcdCluster();
});

after(async () => {
  await cluster?.stop();
});

storeConformanceSuite('etcd', async () => {
  const prefix = freshPrefix();
  return {
    store: openStore(prefix),
    reopen: async () => openStore(prefix),
    cleanup: async () => {},
  };
});
