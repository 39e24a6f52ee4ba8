// Moving SKUs between stores under continuous load: a service on LMDB with
// an etcd mirror takes reservations, payments and cancellations on many SKUs
// from concurrent clients while 10% of its SKUs move to etcd, then all of
// them, then all of them back (the rollback). Throughout: no 5xx, and every
// answer is one the contract allows. After the mirror has caught up: every
// acknowledged order is on its SKU's authoritative store as acknowledged,
// every SKU's ledger holds exactly the units of the orders acknowledged,
// shadow reads of every SKU and of orders all match (and none mismatched
// during the moves), `hotstock check` finds both stores exact and
// `hotstock reconcile` finds no difference.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { OrderView, SkuView } from '../../src/http/views.ts';
import { keys } from '../../src/layout.ts';
import {
  assertBothLedgersExact,
  assertReconciled,
  caughtUp,
  cutoverWaitMsMax,
  moveEnded,
  routing,
  shadowCounts,
  startMove,
} from '../support/cutover.ts';
import { type EtcdCluster, startEtcdCluster } from '../support/etcd.ts';
import {
  type Answer,
  call,
  mapConcurrent,
  pick,
  randomInt,
  runWorkers,
  seededRandom,
  sleep,
  testSeed,
} from '../support/load.ts';
import { createSku, startTestService, type TestService } from '../support/service.ts';

const skuCount = 40;
const initialStock = 1_000;
const limitedEvery = 5; // every 5th SKU has a per-user limit
const maxPerUser = 4;
const workers = 12;
const users = 300;
/** Orders acknowledged between two moves (and before the first, after the last). */
const ordersPerPhase = 150;
const phaseWaitMsMax = 60_000;
const ordersShadowRead = 200;

const seed = testSeed();
const prefix = `cutover-load-${process.pid}/`;
let cluster: EtcdCluster;
let service: TestService;

before(async () => {
  cluster = await startEtcdCluster();
  service = await startTestService({}, { mirror: 'etcd', etcdEndpoints: cluster.endpoints, etcdPrefix: prefix });
});

after(async () => {
  await service?.stop();
  service?.remove();
  await cluster?.stop();
});

interface Acked {
  sku: string;
  qty: number;
  userId: string;
  state: string;
  /** Transitions the order had when `state` was answered: the answer with the most is the latest. */
  steps: number;
}

/** What the clients were told, and anything the contract does not allow. */
class Book {
  readonly orders = new Map<string, Acked>();
  readonly serverErrors: string[] = [];
  readonly problems: string[] = [];

  note(what: string, answer: Answer, allowed: readonly number[]): boolean {
    if (answer.status >= 500) this.serverErrors.push(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
    else if (!allowed.includes(answer.status))
      this.problems.push(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.status < 300;
  }
}

function skuIds(): string[] {
  return Array.from({ length: skuCount }, (_, i) => `move-load-${i}`);
}

async function reserveOne(book: Book, random: () => number, worker: number, sequence: number) {
  const sku = pick(random, skuIds());
  const body = { sku, qty: randomInt(random, 1, 2), userId: `user-${randomInt(random, 1, users)}` };
  const answer = await call(service.url, 'POST', '/v1/orders', { body, idempotencyKey: `load-${worker}-${sequence}` });
  if (book.note(`reserve ${sku}`, answer, [201, 409, 422])) {
    book.orders.set(answer.body.id as string, { ...body, state: 'created', steps: 1 });
  }
}

async function transitionOne(book: Book, random: () => number, worker: number, sequence: number) {
  const ids = [...book.orders.keys()];
  if (ids.length === 0) return;
  const id = pick(random, ids);
  const action = random() < 0.7 ? 'pay' : 'cancel';
  const answer = await call(service.url, 'POST', `/v1/orders/${id}/${action}`, {
    body: {},
    idempotencyKey: `transition-${worker}-${sequence}`,
  });
  if (!book.note(`${action} ${id}`, answer, [200, 409])) return;
  // Two workers may transition one order at once, and their answers may arrive in either order.
  const { state, history } = answer.body as { state: string; history: unknown[] };
  const acked = book.orders.get(id)!;
  if (history.length > acked.steps) Object.assign(acked, { state, steps: history.length });
}

async function shadowReadSku(book: Book, random: () => number) {
  const sku = pick(random, skuIds());
  const answer = await fetch(`${service.url}/v1/skus/${sku}`, {
    headers: { authorization: 'Bearer test-client-key', 'x-canary': 'shadow' },
  });
  await answer.arrayBuffer();
  if (answer.status !== 200) book.problems.push(`shadow GET ${sku}: ${answer.status}`);
}

/** Clients reserving, paying and cancelling, and reading SKUs with X-Canary: shadow, until stopped. */
function startLoad(book: Book) {
  let stopping = false;
  const done = runWorkers(workers, async (worker) => {
    const random = seededRandom(seed + worker);
    for (let sequence = 0; !stopping; sequence++) {
      const roll = random();
      if (roll < 0.75) await reserveOne(book, random, worker, sequence);
      else if (roll < 0.9) await transitionOne(book, random, worker, sequence);
      else await shadowReadSku(book, random);
    }
  });
  return {
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

async function moreOrders(book: Book, what: string): Promise<void> {
  const target = book.orders.size + ordersPerPhase;
  const deadline = Date.now() + phaseWaitMsMax;
  while (book.orders.size < target) {
    assert.ok(Date.now() < deadline, `${what}: ${book.orders.size}/${target} orders in ${phaseWaitMsMax} ms`);
    await sleep(20);
  }
}

async function moveAndWait(body: Record<string, unknown>, onEtcd: number): Promise<void> {
  const started = await startMove(service.url, body);
  const ended = await moveEnded(service.url, started.id, cutoverWaitMsMax);
  assert.equal(ended.state, 'done', JSON.stringify(ended));
  const table = await routing(service.url);
  assert.deepEqual(table.skus, { lmdb: skuCount - onEtcd, etcd: onEtcd }, `after ${JSON.stringify(body)}`);
  console.log(`# move ${JSON.stringify(body)}: done, ${ended.moved} SKUs moved`);
}

/** Every acknowledged order is on its SKU's authoritative store, and GET answers it from there. */
async function assertOrdersWhereTheyBelong(book: Book): Promise<void> {
  const cutover = service.service.cutover!;
  await mapConcurrent([...book.orders], 16, async ([id, acked]) => {
    const entry = await cutover.routing
      .storeFor(acked.sku)
      .get<{ sku: string; qty: number; state: string }>(keys.order(id));
    assert.ok(entry, `acknowledged order ${id} is not on the store authoritative for ${acked.sku}`);
    assert.deepEqual([entry.value.sku, entry.value.qty, entry.value.state], [acked.sku, acked.qty, acked.state]);
    const got = await call<OrderView>(service.url, 'GET', `/v1/orders/${id}`);
    assert.equal(got.status, 200);
  });
}

/** Each SKU holds exactly the units of the orders acknowledged and not cancelled: nothing oversold, nothing lost. */
async function assertLedgers(book: Book): Promise<void> {
  const held = new Map<string, number>();
  for (const order of book.orders.values()) {
    if (order.state === 'created' || order.state === 'paid')
      held.set(order.sku, (held.get(order.sku) ?? 0) + order.qty);
  }
  for (const sku of skuIds()) {
    const view = (await call<SkuView>(service.url, 'GET', `/v1/skus/${sku}`)).body;
    assert.ok(view.available >= 0, `${sku} oversold: ${JSON.stringify(view)}`);
    assert.equal(view.reserved + view.sold, held.get(sku) ?? 0, `${sku}: ${JSON.stringify(view)}`);
    assert.equal(view.total, initialStock);
  }
}

/** Shadow reads of every SKU and of some orders, on a quiet service: every one matches. */
async function assertShadowReadsMatch(book: Book): Promise<void> {
  const before = await shadowCounts(service.url);
  const orderIds = [...book.orders.keys()].slice(0, ordersShadowRead);
  const headers = { authorization: 'Bearer test-client-key', 'x-canary': 'shadow' };
  const paths = [...skuIds().map((sku) => `/v1/skus/${sku}`), ...orderIds.map((id) => `/v1/orders/${id}`)];
  await mapConcurrent(paths, 8, async (path) => {
    const response = await fetch(`${service.url}${path}`, { headers });
    await response.arrayBuffer();
    assert.equal(response.status, 200, path);
  });
  const deadline = Date.now() + phaseWaitMsMax;
  for (;;) {
    const now = await shadowCounts(service.url);
    const compared = Object.values(now).reduce((a, b) => a + b, 0) - Object.values(before).reduce((a, b) => a + b, 0);
    if (compared >= paths.length) {
      assert.equal(
        now.match - before.match,
        paths.length,
        `every shadow read matches: ${JSON.stringify({ before, now })}`,
      );
      return;
    }
    assert.ok(Date.now() < deadline, `shadow reads not all counted: ${JSON.stringify({ before, now })}`);
    await sleep(50);
  }
}

test('10%, then 100% of the SKUs move to etcd and back under load: nothing lost, nothing oversold, stores agree', async () => {
  console.log(`# seed ${seed}`);
  await mapConcurrent(skuIds(), 8, (sku, i) =>
    createSku(service.url, sku, { initialStock, maxPerUser: i % limitedEvery === 0 ? maxPerUser : null }),
  );
  await caughtUp(service.url);
  const book = new Book();
  const load = startLoad(book);
  try {
    await moreOrders(book, 'before any move');
    await moveAndWait({ to: 'etcd', percent: 10 }, Math.ceil(skuCount / 10));
    await moreOrders(book, 'after 10% moved');
    await moveAndWait({ to: 'etcd', percent: 100 }, skuCount);
    await moreOrders(book, 'after 100% moved');
    await moveAndWait({ to: 'lmdb', percent: 100 }, 0);
    await moreOrders(book, 'after the rollback');
  } finally {
    await load.stop();
  }
  console.log(`# ${book.orders.size} orders acknowledged; 5xx: ${book.serverErrors.length}`);
  assert.deepEqual(book.serverErrors, [], 'no 5xx at any time');
  assert.deepEqual(book.problems, [], 'every answer is one the contract allows');
  const during = await shadowCounts(service.url);
  console.log(`# shadow reads during the moves: ${JSON.stringify(during)}`);
  assert.equal(during.mismatch, 0, 'no shadow read found the mirror different');
  await caughtUp(service.url);
  await assertOrdersWhereTheyBelong(book);
  await assertLedgers(book);
  await assertShadowReadsMatch(book);
  const mismatches = await call<{ items: unknown[] }>(service.url, 'GET', '/v1/admin/shadow/mismatches', {
    key: 'test-admin-key',
  });
  assert.deepEqual(mismatches.body.items, []);
  await service.stop();
  const checks = await assertBothLedgersExact(service.dataDir, cluster.endpoints, prefix);
  console.log(`# hotstock check: lmdb: ${checks.lmdb}; etcd: ${checks.etcd}`);
  console.log(`# hotstock reconcile: ${await assertReconciled(service.dataDir, cluster.endpoints, prefix)}`);
});
