// Shards and the cluster view, pure. A SKU's shard never changes (instances
// of different releases must agree on it); shards are split evenly among
// members, the same way on every instance, and a member joining moves few;
// the view takes only values hotstock writes and ignores anything else.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assignShards, shardOf } from '../../src/cluster/shards.ts';
import { ClusterView, isPeerUrl } from '../../src/cluster/view.ts';
import { clusterShardsCount } from '../../src/constants.ts';
import { keys } from '../../src/layout.ts';

const members = ['0b6f3c1e-5b7a-4c0e-9e1f-000000000001', '0b6f3c1e-5b7a-4c0e-9e1f-000000000002'];
const third = '0b6f3c1e-5b7a-4c0e-9e1f-000000000003';

describe('shards', () => {
  test('a SKU hashes to the same shard in every release (FNV-1a of its id)', () => {
    assert.deepEqual(['hot', 'piggy-red-m', 'a', ''].map(shardOf), [20, 3, 44, 5]);
  });

  test('shards are split evenly, whatever the order the members are listed in', () => {
    for (const count of [1, 2, 3, 5]) {
      const ids = [...members, third, `${third.slice(0, -1)}4`, `${third.slice(0, -1)}5`].slice(0, count);
      const owners = assignShards(ids);
      assert.deepEqual(owners, assignShards([...ids].reverse()), 'every instance computes the same owners');
      const shares = ids.map((id) => owners.filter((owner) => owner === id).length);
      assert.ok(Math.max(...shares) - Math.min(...shares) <= count - 1, `shares ${shares}`);
      assert.ok(Math.max(...shares) <= Math.ceil(clusterShardsCount / count), `shares ${shares}`);
    }
    assert.deepEqual(assignShards([]), []);
  });

  test('a member that joins takes its share and moves few others', () => {
    const before = assignShards(members);
    const after = assignShards([...members, third]);
    const moved = after.filter((owner, shard) => owner !== before[shard]).length;
    const taken = after.filter((owner) => owner === third).length;
    assert.ok(moved <= taken + clusterShardsCount / 8, `${moved} moved, ${taken} taken by the new member`);
  });
});

describe('the cluster view', () => {
  const member = (id: string, url = 'http://10.0.0.1:8080', shards = clusterShardsCount) => ({ id, url, shards });

  test('takes members and owners hotstock writes, and drops what is deleted', () => {
    const view = new ClusterView(() => assert.fail('nothing is invalid here'));
    view.load([{ key: keys.clusterMember(members[0]!), value: member(members[0]!), version: 3 }], 5);
    view.apply({
      revision: 6,
      writes: [
        { type: 'put', key: keys.clusterMember(members[1]!), value: member(members[1]!, 'https://[::1]:8443') },
        { type: 'put', key: keys.shardOwner(7), value: { owner: members[1] } },
      ],
    });
    assert.deepEqual([...view.members.keys()], members);
    assert.deepEqual(view.shards.get(7), { owner: members[1], revision: 6 });
    view.apply({ revision: 7, writes: [{ type: 'delete', key: keys.clusterMember(members[0]!) }] });
    assert.deepEqual([...view.members.keys()], [members[1]]);
    assert.equal(view.apply({ revision: 4, writes: [{ type: 'delete', key: keys.shardOwner(7) }] }), false);
    assert.ok(view.shards.has(7), 'a change the snapshot already holds is not applied again');
  });

  test('ignores, and reports, values hotstock does not write', () => {
    const problems: string[] = [];
    const view = new ClusterView((key) => problems.push(key));
    const bad = [
      { key: keys.clusterMember(members[0]!), value: member(members[1]!) },
      { key: keys.clusterMember('not-a-uuid'), value: member('not-a-uuid') },
      { key: keys.clusterMember(members[0]!), value: member(members[0]!, 'http://10.0.0.1:8080/x') },
      { key: keys.clusterMember(members[0]!), value: member(members[0]!, 'file:///etc/passwd') },
      { key: keys.clusterMember(members[0]!), value: member(members[0]!, 'http://10.0.0.1:80') },
      { key: keys.clusterMember(members[0]!), value: member(members[0]!, 'http://10.0.0.1:8080', 63) },
      { key: keys.clusterMember(members[0]!), value: { ...member(members[0]!), extra: true } },
      { key: keys.clusterMember(members[0]!), value: 'text' },
      { key: keys.shardOwner(clusterShardsCount), value: { owner: members[0] } },
      { key: `${keys.shardOwnersPrefix}7`, value: { owner: members[0] } },
      { key: keys.shardOwner(3), value: { owner: 'someone' } },
      { key: keys.shardOwner(3), value: null },
    ];
    view.apply({ revision: 1, writes: bad.map(({ key, value }) => ({ type: 'put' as const, key, value })) });
    assert.equal(problems.length, bad.length, `reported: ${problems.join(', ')}`);
    assert.equal(view.members.size + view.shards.size, 0);
  });

  test('peer URLs are http(s) origins and nothing more', () => {
    for (const good of ['http://127.0.0.1:8080', 'https://shop.example', 'http://[::1]:1']) assert.ok(isPeerUrl(good));
    for (const bad of [
      'http://h:1/',
      'http://u:p@h:1',
      'ftp://h:1',
      'http://h:1?x',
      'HTTP://H:1',
      'https://h:443',
      'h:1',
    ])
      assert.ok(!isPeerUrl(bad), bad);
  });
});
