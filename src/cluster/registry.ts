// The etcd side of shard ownership: one lease per instance, and under it the
// instance's member key and the owner key of each shard it holds. Taking a
// shard is a transaction that succeeds only while nobody holds it; letting
// it go deletes the key only while it is still this holder's. Every call has
// a deadline. Keys are the store's keys (layout.ts) under the same
// `--etcd-prefix`, so the store's change feed carries every ownership change.
import type { Etcd3, IKeyValue, Lease } from 'etcd3';
import { clusterSnapshotKeysMax, etcdCommitTimeoutMs, etcdReadTimeoutMs } from '../constants.ts';
import { keys, type MemberRecord, type ShardOwnerRecord } from '../layout.ts';
import { type Entry, prefixEnd } from '../store/contract.ts';
import { deadline } from '../store/etcd-store.ts';

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export class ClusterRegistry {
  private readonly client: Etcd3;
  private readonly prefix: Buffer;
  private readonly leaseTtlS: number;

  constructor(client: Etcd3, prefix: string, leaseTtlS: number) {
    this.client = client;
    this.prefix = Buffer.from(prefix, 'utf8');
    this.leaseTtlS = leaseTtlS;
  }

  private raw(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key, 'utf8')]);
  }

  /**
   * A new lease, kept alive by the client (a keepalive every third of the
   * TTL). `onLost` hears when etcd says it expired, or when keepalives have
   * failed for twice the TTL.
   */
  async grantLease(onLost: (lease: Lease, error: Error) => void): Promise<{ lease: Lease; id: string }> {
    const lease = this.client.lease(this.leaseTtlS, { autoKeepAlive: true, ...deadline(etcdCommitTimeoutMs) });
    lease.on('lost', (error) => onLost(lease, error));
    return { lease, id: await lease.grant() };
  }

  /** Ends an earlier lease of this instance (and so every key still under it); a lease already gone is fine. */
  async revokeLease(id: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id }, deadline(etcdCommitTimeoutMs));
    } catch (error) {
      if (!/lease not found|requested lease not found/i.test((error as Error).message)) throw error;
    }
  }

  async putMember(record: MemberRecord, leaseId: string): Promise<void> {
    await this.client.kv.put(
      { key: this.raw(keys.clusterMember(record.id)), value: json(record), lease: leaseId },
      deadline(etcdCommitTimeoutMs),
    );
  }

  async deleteMember(memberId: string): Promise<void> {
    await this.client.kv.deleteRange({ key: this.raw(keys.clusterMember(memberId)) }, deadline(etcdCommitTimeoutMs));
  }

  /** Takes `shard` if nobody holds it; its fence token (the key's revision), or undefined when another holds it. */
  async acquire(shard: number, owner: string, leaseId: string): Promise<number | undefined> {
    const key = this.raw(keys.shardOwner(shard));
    const record: ShardOwnerRecord = { owner };
    const response = await this.client.kv.txn(
      {
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: json(record), lease: leaseId } }],
        failure: [],
      },
      deadline(etcdCommitTimeoutMs),
    );
    return response.succeeded ? Number(response.header.revision) : undefined;
  }

  /** Lets `shard` go, if its owner key is still the one taken with `token`. */
  async release(shard: number, token: number): Promise<void> {
    const key = this.raw(keys.shardOwner(shard));
    await this.client.kv.txn(
      {
        compare: [{ key, target: 'Mod', result: 'Equal', mod_revision: token }],
        success: [{ request_delete_range: { key } }],
        failure: [],
      },
      deadline(etcdCommitTimeoutMs),
    );
  }

  /** Every key under `cluster/` and the revision they were read at. */
  async snapshot(): Promise<{ entries: Entry[]; revision: number; complete: boolean }> {
    const response = await this.client.kv.range(
      {
        key: this.raw(keys.clusterPrefix),
        range_end: this.raw(prefixEnd(keys.clusterPrefix)),
        limit: clusterSnapshotKeysMax,
      },
      deadline(etcdReadTimeoutMs),
    );
    const entries: Entry[] = [];
    for (const kv of response.kvs) {
      const entry = this.entryOf(kv);
      if (entry !== undefined) entries.push(entry);
    }
    return { entries, revision: Number(response.header.revision), complete: !response.more };
  }

  /** An entry, or undefined for a value that is not JSON (the view reports what it cannot use). */
  private entryOf(kv: IKeyValue): Entry | undefined {
    try {
      const value: unknown = JSON.parse(kv.value.toString('utf8'));
      return { key: kv.key.subarray(this.prefix.length).toString('utf8'), value, version: Number(kv.mod_revision) };
    } catch {
      return undefined;
    }
  }
}
