// Which shard a SKU belongs to, and which member should own each shard.
//
// A SKU's shard is a hash of its id, the same in every process and release
// (FNV-1a is cheap enough to run on every request). Shards go to members by
// rendezvous hashing with bounded load: every member scores every shard, and
// each shard, in order, goes to the highest-scoring member that owns fewer
// than its share (shards / members, rounded up). Every instance computes the
// same owners from the same member list; the members' shares differ by at
// most one shard (plain rendezvous hashing leaves 64 shards split 43/21 now
// and then); and a member that joins or leaves moves few shards besides the
// ones it takes or gives up.
import { hash } from 'node:crypto';
import { clusterShardsCount } from '../constants.ts';

const fnvOffsetBasis = 0x811c9dc5;
const fnvPrime = 0x01000193;

/** The shard of a SKU: 0 to `clusterShardsCount - 1`. */
export function shardOf(skuId: string): number {
  let h = fnvOffsetBasis;
  for (let i = 0; i < skuId.length; i++) {
    h ^= skuId.charCodeAt(i);
    h = Math.imul(h, fnvPrime);
  }
  return (h >>> 0) % clusterShardsCount;
}

function score(memberId: string, shard: number): string {
  return hash('sha256', `${shard}\u0000${memberId}`, 'hex');
}

/** Members from highest to lowest score for `shard`, each score computed once; ties go to the lower id. */
function byScore(memberIds: readonly string[], shard: number): string[] {
  return memberIds
    .map((id) => ({ id, score: score(id, shard) }))
    .sort((a, b) => (a.score !== b.score ? (a.score > b.score ? -1 : 1) : a.id < b.id ? -1 : 1))
    .map(({ id }) => id);
}

/** The owner of every shard (index = shard) among `memberIds`; empty when there is no member. */
export function assignShards(memberIds: readonly string[]): string[] {
  if (memberIds.length === 0) return [];
  const share = Math.ceil(clusterShardsCount / memberIds.length);
  const owned = new Map(memberIds.map((id) => [id, 0]));
  const owners: string[] = [];
  for (let shard = 0; shard < clusterShardsCount; shard++) {
    const owner = byScore(memberIds, shard).find((id) => owned.get(id)! < share)!;
    owned.set(owner, owned.get(owner)! + 1);
    owners.push(owner);
  }
  return owners;
}
