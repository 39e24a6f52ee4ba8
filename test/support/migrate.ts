// Helpers for the migration tests: `hotstock migrate` as a real child process,
// bulk loading into a real etcd, and a seeded random generator whose seed the
// tests print so a failure can be replayed.
import { type ChildProcess, spawn } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { prefixRangeEnd, rangeStart } from '../../src/migrate/source.ts';
import { mainScript } from './service.ts';

// The same seeded generator and seed choice as every other randomised test.
export { seededRandom, testSeed } from './load.ts';

/** etcd allows at most 128 operations in one txn. */
const etcdTxnOpsMax = 128;
/** etcd refuses requests over 1.5 MiB; a txn is cut before its keys and values pass this. */
const etcdTxnBytesMax = 1024 * 1024;
/** Txns a loader keeps in flight at once. */
const loadTxnsInFlight = 8;

export function etcdClient(endpoints: string[]): Etcd3 {
  return new Etcd3({
    hosts: endpoints,
    grpcOptions: { 'grpc.max_receive_message_length': 256 * 1024 * 1024 },
  });
}

/** Puts every pair with txns of up to 128 puts (a large value gets a txn of its own), several in flight. */
export async function loadPairs(client: Etcd3, pairs: Iterable<[Buffer, Buffer]>): Promise<void> {
  const batches: [Buffer, Buffer][][] = [[]];
  let bytes = 0;
  for (const pair of pairs) {
    const size = pair[0].length + pair[1].length;
    if (batches.at(-1)!.length === etcdTxnOpsMax || (bytes + size > etcdTxnBytesMax && bytes > 0)) {
      batches.push([]);
      bytes = 0;
    }
    batches.at(-1)!.push(pair);
    bytes += size;
  }
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      if (batch.length === 0) continue;
      await client.kv.txn({
        compare: [],
        success: batch.map(([key, value]) => ({ request_put: { key, value } })),
        failure: [],
      });
    }
  };
  await Promise.all(Array.from({ length: loadTxnsInFlight }, worker));
}

/** Every key/value under `prefix` at `revision` (0 = now), in key order. */
export async function readEtcd(client: Etcd3, prefix: Buffer, revision = 0): Promise<[Buffer, Buffer][]> {
  const pairs: [Buffer, Buffer][] = [];
  let start = rangeStart(prefix);
  const end = prefixRangeEnd(prefix);
  for (;;) {
    const response = await client.kv.range({ key: start, range_end: end, limit: 5_000, revision });
    for (const kv of response.kvs) pairs.push([Buffer.from(kv.key), Buffer.from(kv.value)]);
    if (!response.more) return pairs;
    start = Buffer.concat([pairs.at(-1)![0], Buffer.from([0])]);
  }
}

export interface MigrateProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code, or the signal that ended the process. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Resolves once stderr matches `pattern` (rejects if the process ends first). */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
}

export function spawnMigrate(args: string[], env: NodeJS.ProcessEnv = {}): MigrateProcess {
  const child = spawn(process.execPath, [mainScript, 'migrate', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const listener of listeners) listener();
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  const waitFor = (pattern: RegExp, timeoutMs = 120_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(stderr) ?? pattern.exec(stdout);
        if (match) {
          listeners.delete(check);
          resolve(match);
        }
      };
      listeners.add(check);
      check();
      exited.then((code) => reject(new Error(`migrate exited (${code}) before ${pattern}:\n${stdout}\n${stderr}`)));
      setTimeout(
        () => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`)),
        timeoutMs,
      ).unref();
    });
  return { child, stdout: () => stdout, stderr: () => stderr, exited, waitFor };
}

/** Runs `hotstock migrate` to its end. */
export async function runMigrate(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | NodeJS.Signals | null; stdout: string; stderr: string }> {
  const run = spawnMigrate(args, env);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}
