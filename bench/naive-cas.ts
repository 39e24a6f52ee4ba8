// The naive reference for scenario 7: what one would write without a batching
// engine. Each of N clients loops: read the hot SKU's stock key, then one
// etcd Txn that compares its mod_revision with the one read and, if it still
// holds, writes the decremented stock and the order. A client whose compare
// fails reads again. Prints `naive-cas {"reservations":…,"conflicts":…,"seconds":…}`.
//
//   node bench/naive-cas.ts --endpoint http://127.0.0.1:2379 --clients 64 --seconds 10
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    clients: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '10' },
    prefix: { type: 'string', default: 'bench/naive/' },
  },
});
if (values.endpoint === undefined) throw new Error('--endpoint is required');
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const stockKey = `${values.prefix}stock`;

const etcd = new Etcd3({ hosts: values.endpoint });
await etcd.put(stockKey).value(String(Number.MAX_SAFE_INTEGER));

let reservations = 0;
let conflicts = 0;
const endMs = performance.now() + seconds * 1000;

async function buyer(client: number): Promise<void> {
  for (let n = 0; performance.now() < endMs; n++) {
    const read = await etcd.get(stockKey).exec();
    const kv = read.kvs[0]!;
    const order = JSON.stringify({ sku: 'hot', qty: 1, user: `u${client}` });
    const txn = await etcd
      .if(stockKey, 'Mod', '==', kv.mod_revision)
      .then(
        etcd.put(stockKey).value(String(Number(kv.value.toString()) - 1)),
        etcd.put(`${values.prefix}order/${client}-${n}`).value(order),
      )
      .commit();
    if (txn.succeeded) reservations++;
    else conflicts++;
  }
}

const startedMs = performance.now();
await Promise.all(Array.from({ length: clients }, (_, client) => buyer(client)));
const elapsedS = (performance.now() - startedMs) / 1000;
await etcd.delete().prefix(values.prefix);
etcd.close();
console.log(`naive-cas ${JSON.stringify({ reservations, conflicts, seconds: elapsedS })}`);
