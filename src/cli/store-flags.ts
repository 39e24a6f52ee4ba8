// The flags of the commands that open a store themselves (`check`,
// `reconcile`): where the LMDB store and the etcd namespace are, and how to
// reach etcd; and the etcd store they name.
import { readdirSync, statSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { etcdMaxTxnOpsDefault } from '../constants.ts';
import { createEtcdClient, EtcdStore } from '../store/etcd-store.ts';
import { endpointList, type Flag } from './flags.ts';

export interface StoreAccess {
  dataDir: string;
  etcdEndpoints?: string[];
  etcdPrefix: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
}

export const storeAccessFlags: readonly Flag[] = [
  { name: 'data-dir', arg: 'dir', help: 'directory of the LMDB store', default: './data' },
  { name: 'etcd-endpoints', arg: 'urls', help: 'etcd client URLs, comma-separated', parse: endpointList },
  { name: 'etcd-prefix', arg: 'prefix', help: 'namespace of hotstock keys', default: 'hotstock/' },
  { name: 'etcd-ca', arg: 'file', help: 'CA certificate for TLS to etcd' },
  { name: 'etcd-cert', arg: 'file', help: 'client certificate for TLS to etcd' },
  { name: 'etcd-key', arg: 'file', help: 'client key for TLS to etcd' },
];

/** The etcd namespace the flags name; refused without endpoints. */
export function openEtcd(options: StoreAccess, why: string): EtcdStore {
  const endpoints = options.etcdEndpoints ?? [];
  if (endpoints.length === 0) throw new InvalidArgumentError(`${why} needs --etcd-endpoints`);
  const tls = options.etcdCa
    ? { caFile: options.etcdCa, certFile: options.etcdCert, keyFile: options.etcdKey }
    : undefined;
  return new EtcdStore({
    client: createEtcdClient({ endpoints, ...(tls ? { tls } : {}) }),
    ownsClient: true,
    prefix: options.etcdPrefix,
    maxTxnOps: etcdMaxTxnOpsDefault,
  });
}

/**
 * A data directory must exist and hold something; opening anything else would
 * only give a raw store error. `emptyReason` ends the message for an empty one.
 */
export function assertStoreDirectory(dataDir: string, emptyReason: string): void {
  let entries: string[];
  try {
    if (!statSync(dataDir).isDirectory()) throw new InvalidArgumentError(`--data-dir ${dataDir} is not a directory`);
    entries = readdirSync(dataDir);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError(
      code === 'ENOENT' ? `--data-dir ${dataDir} does not exist` : `--data-dir ${dataDir}: ${(error as Error).message}`,
    );
  }
  if (entries.length === 0) throw new InvalidArgumentError(`--data-dir ${dataDir} is empty: ${emptyReason}`);
}
