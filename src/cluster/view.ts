// What this instance knows of the cluster: the live members and the owner of
// each shard, as etcd holds them under `cluster/`, started from a snapshot
// and kept current from the store's change feed. Everything read is
// validated: a value hotstock could not have written is ignored and
// reported, never trusted (it could point forwarded writes anywhere).
import { clusterMembersMax, clusterShardsCount } from '../constants.ts';
import { keys, type MemberRecord, type ShardOwnerRecord, shardOfOwnerKey } from '../layout.ts';
import type { CommittedChange, Entry } from '../store/contract.ts';

/** Member ids are random UUIDs, one per process start. */
const memberIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface ShardOwner {
  owner: string;
  /** The owner key's revision: the owner's fence token. */
  revision: number;
}

/** A URL peers can send forwarded writes to: an http(s) origin as the URL standard writes it (`https://host:8443`). */
export function isPeerUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Why a member value is not one hotstock writes; undefined when it is. */
function memberProblem(key: string, value: unknown): string | undefined {
  if (!isObject(value) || Object.keys(value).length !== 3) return 'not a member record';
  const { id, url, shards } = value;
  if (typeof id !== 'string' || !memberIdPattern.test(id) || keys.clusterMember(id) !== key) return 'bad member id';
  if (typeof url !== 'string' || !isPeerUrl(url)) return 'bad URL';
  if (shards !== clusterShardsCount) return `hashes SKUs into ${String(shards)} shards, not ${clusterShardsCount}`;
  return undefined;
}

export class ClusterView {
  readonly members = new Map<string, MemberRecord>();
  readonly shards = new Map<number, ShardOwner>();
  /** Changes at or before this revision are in the snapshot already. */
  private snapshotRevision = 0;
  private readonly onInvalid: (key: string, problem: string) => void;

  constructor(onInvalid: (key: string, problem: string) => void) {
    this.onInvalid = onInvalid;
  }

  /** Starts again from a snapshot of every key under `cluster/` at `revision`. */
  load(entries: readonly Entry[], revision: number): void {
    this.members.clear();
    this.shards.clear();
    this.snapshotRevision = revision;
    for (const entry of entries) this.put(entry.key, entry.value, entry.version);
  }

  /** Applies one committed change; true when it touched the cluster's keys. */
  apply(change: CommittedChange): boolean {
    if (change.revision <= this.snapshotRevision) return false;
    let touched = false;
    for (const write of change.writes) {
      if (!write.key.startsWith(keys.clusterPrefix)) continue;
      touched = true;
      if (write.type === 'put') this.put(write.key, write.value, change.revision);
      else this.remove(write.key);
    }
    return touched;
  }

  private put(key: string, value: unknown, revision: number): void {
    if (key.startsWith(keys.clusterMembersPrefix)) {
      const problem = memberProblem(key, value);
      const record = value as MemberRecord;
      if (problem !== undefined) this.onInvalid(key, problem);
      else if (this.members.size >= clusterMembersMax && !this.members.has(record.id))
        this.onInvalid(key, `more than ${clusterMembersMax} members`);
      else this.members.set(record.id, { id: record.id, url: record.url, shards: record.shards });
      return;
    }
    const shard = shardOfOwnerKey(key);
    const owner = isObject(value) ? (value as Partial<ShardOwnerRecord>).owner : undefined;
    if (shard === undefined || shard >= clusterShardsCount) this.onInvalid(key, 'not a shard owner key');
    else if (typeof owner !== 'string' || !memberIdPattern.test(owner)) this.onInvalid(key, 'bad owner id');
    else this.shards.set(shard, { owner, revision });
  }

  private remove(key: string): void {
    if (key.startsWith(keys.clusterMembersPrefix)) {
      this.members.delete(key.slice(keys.clusterMembersPrefix.length));
      return;
    }
    const shard = shardOfOwnerKey(key);
    if (shard !== undefined) this.shards.delete(shard);
  }
}
