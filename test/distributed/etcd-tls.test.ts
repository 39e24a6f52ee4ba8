// hotstock talks to an etcd that serves clients only over TLS and requires a
// client certificate: with --etcd-ca/--etcd-cert/--etcd-key it starts and
// takes orders; without a client certificate it refuses to start, saying the
// endpoint does not answer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type EtcdCluster, type EtcdTlsFiles, makeTestCertificates, startEtcdCluster } from '../support/etcd.ts';
import {
  createSku,
  etcdServeArgs,
  killIfRunning,
  reserve,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

const certDir = mkdtempSync(join(tmpdir(), 'hotstock-etcd-tls-'));
const data = tempDataDir('hotstock-etcd-tls');
let tls: EtcdTlsFiles;
let cluster: EtcdCluster;
let server: ServerProcess | undefined;

before(async () => {
  tls = makeTestCertificates(certDir);
  cluster = await startEtcdCluster({ tls });
});

after(async () => {
  await killIfRunning(server);
  await cluster?.stop();
  rmSync(certDir, { recursive: true, force: true });
  data.remove();
});

describe('etcd over TLS', () => {
  it('with CA, client certificate and key: starts and takes orders', async () => {
    assert.match(cluster.endpoints[0]!, /^https:/);
    server = await spawnServer(
      data.dir,
      etcdServeArgs(cluster.endpoints, 'tls/', [
        '--etcd-ca',
        tls.caFile,
        '--etcd-cert',
        tls.clientCertFile,
        '--etcd-key',
        tls.clientKeyFile,
      ]),
    );
    await createSku(server.url, 'tls-sku', { initialStock: 5 });
    const order = await reserve(server.url, { sku: 'tls-sku', qty: 1, userId: 'u1' });
    assert.equal(order.status, 201, JSON.stringify(order.body));
  });

  it('without a client certificate: refuses to start, naming the endpoint', async () => {
    await assert.rejects(
      spawnServer(data.dir, etcdServeArgs(cluster.endpoints, 'tls/', ['--etcd-ca', tls.caFile])),
      /no etcd endpoint answers/,
    );
  });
});
