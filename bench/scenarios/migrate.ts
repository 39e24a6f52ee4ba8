// Migration throughput: 1,000,000 keys of ~200 bytes in a local one-member
// etcd (pinned to the load CPU), copied by `hotstock migrate` (pinned to the
// server CPU) into a fresh data directory; then `--verify` over the result.
// Reports the copy's keys/s (target ≥ 50,000/s) and the verify time.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { freePort } from '../../test/support/etcd.ts';
import { type ProcessResult, runProcess } from '../process.ts';
import type { BenchContext, BenchRow, BenchScenario } from '../scenario.ts';

const mainScript = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const name = '9 migrate from etcd';
const keysFull = 1_000_000;
const keysSmoke = 20_000;
const valueBytes = 180;
const prefix = 'bench/migrate/';
const keysPerSecondTarget = 50_000;
/** etcd allows 128 ops per txn; this many txns are kept in flight while loading. */
const loadTxnOps = 128;
const loadTxnsInFlight = 16;
const etcdStartTimeoutMs = 30_000;

async function startEtcd(cpu: number, dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const child = spawn(
    'taskset',
    [
      '-c',
      String(cpu),
      process.env.HOTSTOCK_TEST_ETCD ?? 'etcd',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      '--log-level=error',
      `--quota-backend-bytes=${8 * 1024 * 1024 * 1024}`,
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + etcdStartTimeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      if (((await response.json()) as { health?: string }).health === 'true') return { url, child };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`etcd not healthy within ${etcdStartTimeoutMs} ms`);
}

async function load(client: Etcd3, keys: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys) {
      const first = next;
      next = Math.min(keys, next + loadTxnOps);
      const success = [];
      for (let i = first; i < next; i++) {
        const key = Buffer.from(`${prefix}${String(i).padStart(8, '0')}`);
        const value = Buffer.alloc(valueBytes, i % 251);
        success.push({ request_put: { key, value } });
      }
      await client.kv.txn({ compare: [], success, failure: [] });
    }
  };
  await Promise.all(Array.from({ length: loadTxnsInFlight }, worker));
}

function runPinned(cpu: number, args: string[]): Promise<ProcessResult> {
  return runProcess(process.execPath, [mainScript, 'migrate', ...args], { cpu });
}

async function run(context: BenchContext): Promise<BenchRow[]> {
  const keys = context.smoke ? keysSmoke : keysFull;
  const work = mkdtempSync(join(tmpdir(), 'hotstock-bench-migrate-'));
  const etcd = await startEtcd(context.loadCpu, join(work, 'etcd'));
  const client = new Etcd3({ hosts: [etcd.url] });
  try {
    context.log(`migrate: loading ${keys} keys of ~${valueBytes + 22} bytes into etcd`);
    await load(client, keys);
    const args = ['--etcd-endpoints', etcd.url, '--prefix', prefix, '--data-dir', join(work, 'data')];
    context.log('migrate: copying');
    const copy = await runPinned(context.serverCpu, args);
    if (copy.code !== 0) throw new Error(`migrate failed (${copy.code}): ${copy.stderr}`);
    const copyLine = /this run: (\d+) keys in \S+ \((\d+) keys\/s, (\d+) ms\)/.exec(copy.stdout);
    if (!copyLine || Number(copyLine[1]) !== keys) throw new Error(`unexpected summary: ${copy.stdout}`);
    context.log('migrate: verifying');
    const verify = await runPinned(context.serverCpu, [...args, '--verify']);
    if (verify.code !== 0 || !/source and destination agree/.test(verify.stdout)) {
      throw new Error(`verify failed (${verify.code}): ${verify.stdout}${verify.stderr}`);
    }
    const keysPerSecond = Number(copyLine[2]);
    const processKeysPerSecond = Math.round(keys / (copy.ms / 1000));
    return [
      {
        scenario: name,
        measure: 'keys/s',
        value: keysPerSecond,
        ...(context.smoke
          ? {}
          : {
              target: {
                text: `≥ ${keysPerSecondTarget.toLocaleString('en')}/s`,
                met: keysPerSecond >= keysPerSecondTarget,
              },
            }),
        note: `${keys} keys; copy phase ${copyLine[3]} ms; ${processKeysPerSecond} keys/s counting process start`,
      },
      {
        scenario: name,
        measure: 'migrate --verify, s',
        value: Math.round(verify.ms) / 1000,
        // A verify that found a difference threw above; reaching here means it agreed.
        target: { text: 'source and destination agree', met: true },
        note: `--verify over ${keys} keys (source re-read at the pinned revision, destination re-read, chunk hashes compared)`,
      },
    ];
  } finally {
    client.close();
    etcd.child.kill('SIGKILL');
    await new Promise((resolve) =>
      etcd.child.exitCode !== null ? resolve(undefined) : etcd.child.once('exit', resolve),
    );
    rmSync(work, { recursive: true, force: true });
  }
}

export const migrateScenario: BenchScenario = {
  name,
  description: `hotstock migrate: ${keysFull.toLocaleString('en')} keys of ~200 bytes out of a local etcd, then --verify`,
  run,
};

export default migrateScenario;
