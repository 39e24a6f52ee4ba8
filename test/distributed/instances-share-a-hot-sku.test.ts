// Two, then three, hotstock instances on one real 3-member etcd cluster sell
// one hot SKU together: 3,000 buyers for 500 units, spread over every
// instance, some sending the same key to two instances at once. One
// instance owns the SKU and the others forward its writes there, so nobody
// fights over it: exactly the stock is sold, no request gets a 5xx, a key
// gives at most one order and replays on any instance, every acknowledged
// order is there after every instance is killed and started again, and
// `hotstock check --store etcd` finds the ledger exact. The shards of SKUs
// are spread evenly, so hot SKUs do not all land on one instance.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shardOf } from '../../src/cluster/shards.ts';
import { clusterShardsCount } from '../../src/constants.ts';
import type { OrderView } from '../../src/http/views.ts';
import { getSku, listAllOrders } from '../support/api-helpers.ts';
import { clusterStatus, ownerIdOf, startInstances, useEtcdCluster, waitSettled } from '../support/cluster.ts';
import { type Answer, call, mapConcurrent, sleep } from '../support/load.ts';
import { createSku, etcdArgs, killIfRunning, runCheck, type ServerProcess, spawnServer } from '../support/service.ts';

const stock = 500;
const buyers = 3_000;
/** Of those, this many send their key to two instances at once. */
const doubleSenders = 60;
const concurrency = 64;
/** SKUs whose owners show the spread: with them all on one of three instances, the spread is broken. */
const spreadSkus = 30;
/** How long an instance may take to learn of a new SKU from the change feed. */
const feedWaitMsMax = 20_000;

const fixture = useEtcdCluster('hotstock-share', 3);

async function waitUntilEverySees(servers: readonly ServerProcess[], sku: string): Promise<void> {
  const deadline = Date.now() + feedWaitMsMax;
  for (const server of servers) {
    while ((await call(server.url, 'GET', `/v1/skus/${sku}`)).status !== 200) {
      assert.ok(Date.now() < deadline, `${server.url} never learned of SKU ${sku} from the change feed`);
      await sleep(20);
    }
  }
}

interface Buyer {
  key: string;
  userId: string;
  /** The instances the key is sent to (two at once for a double sender). */
  instances: number[];
}

/** One attempt per send, no retries: a flash sale through several instances must not need them. */
async function buy(servers: readonly ServerProcess[], sku: string, buyer: Buyer): Promise<Answer[]> {
  return Promise.all(
    buyer.instances.map((i) =>
      call(servers[i]!.url, 'POST', '/v1/orders', {
        body: { sku, qty: 1, userId: buyer.userId },
        idempotencyKey: buyer.key,
      }),
    ),
  );
}

/** Every answer is 201 or sold out, never a 5xx; a key gives at most one order. Returns key -> order id. */
function ordersByKey(buyerList: readonly Buyer[], answers: readonly Answer[][]): Map<string, string> {
  const orders = new Map<string, string>();
  const statuses: Record<string, number> = {};
  for (const [i, perKey] of answers.entries()) {
    const ids = new Set<string>();
    for (const answer of perKey) {
      const code = (answer.body as { code?: string }).code;
      const label = code === undefined ? String(answer.status) : `${answer.status} ${code}`;
      statuses[label] = (statuses[label] ?? 0) + 1;
      if (answer.status === 201) ids.add((answer.body as unknown as OrderView).id);
      else assert.equal(label, '409 sold_out', `unexpected answer ${JSON.stringify(answer.body)}`);
    }
    assert.ok(ids.size <= 1, `key ${buyerList[i]!.key} produced ${ids.size} orders`);
    if (ids.size === 1) orders.set(buyerList[i]!.key, [...ids][0]!);
  }
  console.log(`answers: ${JSON.stringify(statuses)}`);
  return orders;
}

/** Shards and hot SKUs are spread: every instance serves its share, and the SKUs land on every instance. */
async function assertSpread(servers: readonly ServerProcess[], prefix: string): Promise<void> {
  const statuses = await Promise.all(servers.map(clusterStatus));
  console.log(`shards served: ${statuses.map((status) => status.shardsServing).join(', ')} of ${clusterShardsCount}`);
  const owners = new Set<string | undefined>();
  for (let i = 0; i < spreadSkus; i++) owners.add(await ownerIdOf(fixture.etcd.endpoints[0]!, prefix, `spread-${i}`));
  assert.deepEqual(
    [...owners].sort(),
    statuses.map((status) => status.memberId).sort(),
    `${spreadSkus} SKUs (shards ${[...new Set(Array.from({ length: spreadSkus }, (_, i) => shardOf(`spread-${i}`)))].length} distinct) land on every instance`,
  );
}

async function flashSale(count: number): Promise<void> {
  const prefix = `share-${count}-${process.pid}/`;
  const { servers, args } = await startInstances(
    count,
    fixture.dataDir,
    fixture.etcd.endpoints,
    prefix,
    [],
    fixture.running,
  );
  await waitSettled(servers);
  await assertSpread(servers, prefix);
  const sku = `hot-${count}-${process.pid}`;
  await createSku(servers[0]!.url, sku, { initialStock: stock });
  await waitUntilEverySees(servers, sku);

  const buyerList: Buyer[] = Array.from({ length: buyers }, (_, i) => ({
    key: `buy-${count}-${i}`,
    userId: `u${i}`,
    instances: i < doubleSenders ? [i % count, (i + 1) % count] : [i % count],
  }));
  const answers = await mapConcurrent(buyerList, concurrency, (buyer) => buy(servers, sku, buyer));
  const orders = ordersByKey(buyerList, answers);
  const orderIds = new Set(orders.values());
  assert.equal(orderIds.size, stock, 'exactly the stock was sold');
  for (const server of servers) {
    const view = await getSku(server.url, sku);
    assert.deepEqual([view.reserved, view.available], [stock, 0], `SKU on ${server.url}`);
  }

  // A key acknowledged on one instance replays, the same order, on every instance.
  const [replayKey, replayOrder] = [...orders][0]!;
  const buyer = buyerList.find((candidate) => candidate.key === replayKey)!;
  for (const server of servers) {
    const replay = await call<OrderView>(server.url, 'POST', '/v1/orders', {
      body: { sku, qty: 1, userId: buyer.userId },
      idempotencyKey: replayKey,
    });
    assert.deepEqual([replay.status, replay.body.id], [201, replayOrder], `replay on ${server.url}`);
  }

  // Every acknowledged order survives every instance being killed and started again.
  for (const server of servers) await killIfRunning(server);
  const restarted: ServerProcess[] = [];
  for (let i = 0; i < count; i++) restarted.push(await spawnServer(fixture.dataDir, args));
  fixture.running.push(...restarted);
  await waitSettled(restarted);
  for (const server of restarted) {
    const listed = await listAllOrders(server.url, { sku });
    assert.deepEqual(listed.map((order) => order.id).sort(), [...orderIds].sort(), `orders on ${server.url}`);
    for (const id of [...orderIds].slice(0, 20)) {
      assert.equal((await call(server.url, 'GET', `/v1/orders/${id}`)).status, 200, `order ${id}`);
    }
  }

  for (const server of restarted) {
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, 'a clean stop hands the shards over and exits 0');
  }
  const check = await runCheck(fixture.dataDir, etcdArgs(fixture.etcd.endpoints, prefix));
  console.log(`hotstock check --store etcd: ${check.stdout.trim()}`);
  assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
  assert.match(check.stdout, /ledger exact/);
}

describe('instances on a 3-member etcd cluster sell one hot SKU together', () => {
  for (const count of [2, 3]) {
    it(`${count} instances: ${buyers} buyers for ${stock} units, exactly the stock sold, no 5xx, nothing lost`, () =>
      flashSale(count));
  }
});
