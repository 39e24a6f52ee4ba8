// `hotstock serve` configuration as a user meets it: bad flags (and bad env
// twins) are refused at start with a message naming the flag; every flag's
// environment twin works and the flag wins over it; `serve --help` lists the
// flags; SIGTERM under load drains in-flight work, exits 0 and loses no
// acknowledged order.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { OrderView } from '../../src/http/views.ts';
import { getSku } from '../support/api-helpers.ts';
import { assertLedgerExact } from '../support/assertions.ts';
import { type Answer, call, NetworkFailure, runWorkers } from '../support/load.ts';
import {
  adminKey,
  clientKey,
  createSku,
  killIfRunning,
  mainScript,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

/** A refused start must end this fast; a start that works must be listening this fast. */
const startWaitMsMax = 20_000;

interface ServeRun {
  /** Set when the server printed its listening address. */
  url?: string;
  /** Set when the process ended before (or instead of) listening. */
  exitCode?: number | null;
  output: string;
  stop: (signal?: NodeJS.Signals) => Promise<number | NodeJS.Signals | null>;
}

/** The environment without any HOTSTOCK_* variable the test runner may have, plus `env`. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HOTSTOCK_')));
  // Tests share a busy machine: load shedding is off unless a test sets it.
  const noShedding = { HOTSTOCK_SHED_QUEUE_WAIT_MS: '0', HOTSTOCK_SHED_EVENT_LOOP_LAG_MS: '0' };
  return { ...base, ...noShedding, ...env };
}

/** Runs `node src/main.ts <args>` and waits until it listens or exits (bounded). */
async function runServe(args: string[], env: Record<string, string> = {}): Promise<ServeRun> {
  const child = spawn(process.execPath, [mainScript, ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  const run = await new Promise<ServeRun>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ output: `${output}\n[test: no listen and no exit within ${startWaitMsMax} ms]`, stop });
    }, startWaitMsMax);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1]!, output, stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // 'close' comes after the pipes are drained, so the output holds the last words.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, output, stop });
    });
  });
  run.output = output;
  return run;
}

/** Valid serve flags; a case replaces or drops some of them. */
function serveArgs(dataDir: string, overrides: Record<string, string | null> = {}): string[] {
  const flags: Record<string, string | null> = {
    '--data-dir': dataDir,
    '--port': '0',
    '--admin-keys': adminKey,
    '--client-keys': clientKey,
    ...overrides,
  };
  return [
    'serve',
    ...Object.entries(flags).flatMap(([flag, value]) => (value === null ? [] : value === '' ? [flag] : [flag, value])),
  ];
}

interface RefusalCase {
  name: string;
  overrides?: Record<string, string | null>;
  env?: Record<string, string>;
  names: RegExp[];
  /** Secrets the refusal must not repeat. */
  hides?: string[];
}

const onEtcd = { '--store': 'etcd', '--etcd-endpoints': 'http://127.0.0.1:1' };
const goodClusterKey = 'config-test-cluster-key-0123456789';

const refusals: RefusalCase[] = [
  { name: '--port abc', overrides: { '--port': 'abc' }, names: [/--port\b/] },
  { name: '--port 70000', overrides: { '--port': '70000' }, names: [/--port\b/, /70000/] },
  { name: '--port -1', overrides: { '--port': '-1' }, names: [/--port\b/] },
  { name: '--reservation-ttl-ms 5', overrides: { '--reservation-ttl-ms': '5' }, names: [/--reservation-ttl-ms\b/] },
  { name: '--store nosuch', overrides: { '--store': 'nosuch' }, names: [/--store\b/, /nosuch/] },
  {
    name: 'no API keys at all',
    overrides: { '--admin-keys': null, '--client-keys': null },
    names: [/--admin-keys\b/, /--client-keys\b/],
  },
  {
    name: 'a short client key, without repeating it',
    overrides: { '--client-keys': 'good-client-key-1,short' },
    names: [/--client-keys\b/],
    hides: ['good-client-key-1', 'short'],
  },
  {
    name: 'a short admin key, without repeating it',
    overrides: { '--admin-keys': 'seven77' },
    names: [/--admin-keys\b/],
    hides: ['seven77'],
  },
  {
    name: 'an admin key with a space in HOTSTOCK_ADMIN_KEYS, without repeating it',
    overrides: { '--admin-keys': null },
    env: { HOTSTOCK_ADMIN_KEYS: 'typed admin-key-with-space' },
    names: [/--admin-keys\b/, /HOTSTOCK_ADMIN_KEYS/],
    hides: ['admin-key-with-space'],
  },
  {
    name: 'a client key longer than an Authorization header is read with, without repeating it',
    overrides: { '--client-keys': 'k'.repeat(513) },
    names: [/--client-keys\b/, /8 to 512/],
    hides: ['k'.repeat(513)],
  },
  {
    name: 'a cluster key longer than an Authorization header is read with, without repeating it',
    overrides: { ...onEtcd, '--cluster-key': 'c'.repeat(513) },
    names: [/--cluster-key\b/, /at most 512/],
    hides: ['c'.repeat(513)],
  },
  {
    name: 'a short --cursor-secret, without repeating it',
    overrides: { '--cursor-secret': 'short-cursor-secret' },
    names: [/--cursor-secret\b/, /at least 32/],
    hides: ['short-cursor-secret'],
  },
  {
    name: 'a bad env twin HOTSTOCK_PORT=abc',
    overrides: { '--port': null },
    env: { HOTSTOCK_PORT: 'abc' },
    names: [/--port\b/, /HOTSTOCK_PORT/],
  },
  { name: '--store etcd without endpoints', overrides: { '--store': 'etcd' }, names: [/--etcd-endpoints\b/] },
  {
    name: '--etcd-endpoints that is not a URL',
    overrides: { '--store': 'etcd', '--etcd-endpoints': 'etcd-host' },
    names: [/--etcd-endpoints\b/, /etcd-host/],
  },
  {
    name: '--etcd-expect-members 0',
    overrides: { '--store': 'etcd', '--etcd-endpoints': 'http://127.0.0.1:1', '--etcd-expect-members': '0' },
    names: [/--etcd-expect-members\b/],
  },
  {
    name: '--etcd-cert without --etcd-key',
    overrides: { '--store': 'etcd', '--etcd-endpoints': 'http://127.0.0.1:1', '--etcd-cert': '/etc/hostname' },
    names: [/--etcd-cert\b/, /--etcd-key\b/],
  },
  { name: '--store etcd without --cluster-key', overrides: onEtcd, names: [/--cluster-key\b/] },
  {
    name: 'a short --cluster-key, without repeating it',
    overrides: { ...onEtcd, '--cluster-key': 'short-secret-value' },
    names: [/--cluster-key\b/, /at least 32/],
    hides: ['short-secret-value'],
  },
  {
    name: 'a short HOTSTOCK_CLUSTER_KEY, without repeating it',
    overrides: onEtcd,
    env: { HOTSTOCK_CLUSTER_KEY: `${goodClusterKey},short-env-secret` },
    names: [/--cluster-key\b/, /HOTSTOCK_CLUSTER_KEY/],
    hides: ['short-env-secret', goodClusterKey],
  },
  {
    name: '--cluster-key on the embedded store',
    overrides: { '--cluster-key': goodClusterKey },
    names: [/--cluster-key\b/, /--store etcd/],
    hides: [goodClusterKey],
  },
  {
    name: '--cluster-lease-ttl-s 1',
    overrides: { ...onEtcd, '--cluster-key': goodClusterKey, '--cluster-lease-ttl-s': '1' },
    names: [/--cluster-lease-ttl-s\b/],
  },
  {
    name: '--cluster-advertise-url with a path',
    overrides: { ...onEtcd, '--cluster-key': goodClusterKey, '--cluster-advertise-url': 'http://10.0.0.7:8080/x' },
    names: [/--cluster-advertise-url\b/],
  },
  {
    name: '--breaker-failure-rate 2',
    overrides: { '--breaker-failure-rate': '2' },
    names: [/--breaker-failure-rate\b/],
  },
  {
    name: 'a bad env twin HOTSTOCK_BREAKER_HALF_OPEN_MS=5',
    env: { HOTSTOCK_BREAKER_HALF_OPEN_MS: '5' },
    names: [/--breaker-half-open-ms\b/],
  },
  {
    name: 'a bad env twin HOTSTOCK_RESERVATION_TTL_MS=5',
    env: { HOTSTOCK_RESERVATION_TTL_MS: '5' },
    names: [/--reservation-ttl-ms\b/],
  },
  { name: '--mirror lmdb on --store lmdb', overrides: { '--mirror': 'lmdb' }, names: [/--mirror\b/, /--store\b/] },
  { name: '--mirror etcd without endpoints', overrides: { '--mirror': 'etcd' }, names: [/--etcd-endpoints\b/] },
  { name: '--mirror nosuch', overrides: { '--mirror': 'nosuch' }, names: [/--mirror\b/, /nosuch/] },
  {
    name: 'a bad env twin HOTSTOCK_MIRROR=redis',
    env: { HOTSTOCK_MIRROR: 'redis' },
    names: [/--mirror\b/, /redis/],
  },
  {
    name: '--shadow-read-ratio 1.5',
    overrides: { '--mirror': 'etcd', '--etcd-endpoints': 'http://127.0.0.1:1', '--shadow-read-ratio': '1.5' },
    names: [/--shadow-read-ratio\b/],
  },
  {
    name: 'a bad env twin HOTSTOCK_SHADOW_READ_RATIO=1e-2',
    overrides: { '--mirror': 'etcd', '--etcd-endpoints': 'http://127.0.0.1:1' },
    env: { HOTSTOCK_SHADOW_READ_RATIO: '1e-2' },
    names: [/--shadow-read-ratio\b/, /HOTSTOCK_SHADOW_READ_RATIO/],
  },
  {
    name: '--shadow-read-ratio without --mirror',
    overrides: { '--shadow-read-ratio': '0.1' },
    names: [/--shadow-read-ratio\b/, /--mirror\b/],
  },
  {
    name: '--mirror lmdb with --cluster-key, without repeating it',
    overrides: { ...onEtcd, '--mirror': 'lmdb', '--cluster-key': goodClusterKey },
    names: [/--mirror\b/, /--cluster-key\b/, /one instance/],
    hides: [goodClusterKey],
  },
  {
    name: '--mirror etcd with --cluster-advertise-url',
    overrides: {
      '--mirror': 'etcd',
      '--etcd-endpoints': 'http://127.0.0.1:1',
      '--cluster-advertise-url': 'http://10.0.0.7:8080',
    },
    names: [/--mirror\b/, /--cluster-advertise-url\b/],
  },
  {
    name: '--mirror lmdb with HOTSTOCK_CLUSTER_KEY, without repeating it',
    overrides: { ...onEtcd, '--mirror': 'lmdb' },
    env: { HOTSTOCK_CLUSTER_KEY: goodClusterKey },
    names: [/--mirror\b/, /--cluster-key\b/],
    hides: [goodClusterKey],
  },
];

describe('hotstock serve configuration', () => {
  for (const refusal of refusals) {
    it(`refuses to start on ${refusal.name}, naming the flag`, async () => {
      const data = tempDataDir('hotstock-config');
      try {
        const run = await runServe(serveArgs(data.dir, refusal.overrides), refusal.env);
        await run.stop();
        assert.equal(run.url, undefined, `it started anyway:\n${run.output}`);
        assert.ok(typeof run.exitCode === 'number' && run.exitCode !== 0, `exit ${run.exitCode}:\n${run.output}`);
        for (const name of refusal.names) assert.match(run.output, name);
        for (const secret of refusal.hides ?? []) assert.ok(!run.output.includes(secret), 'a secret was repeated');
        assert.deepEqual(readdirSync(data.dir), [], 'a refused start leaves the data dir untouched');
      } finally {
        data.remove();
      }
    });
  }

  it('takes every setting from its environment twin when no flag is given', async () => {
    const data = tempDataDir('hotstock-config');
    const run = await runServe(['serve'], {
      HOTSTOCK_PORT: '0',
      HOTSTOCK_HOST: '127.0.0.1',
      HOTSTOCK_DATA_DIR: data.dir,
      HOTSTOCK_ADMIN_KEYS: 'env-admin-key-1',
      HOTSTOCK_CLIENT_KEYS: 'env-client-key-1,env-client-key-2',
      HOTSTOCK_RESERVATION_TTL_MS: '60000',
    });
    try {
      assert.ok(run.url, `did not start:\n${run.output}`);
      const created = await call(run.url, 'PUT', '/v1/skus/env-tee', {
        key: 'env-admin-key-1',
        body: { product: 'p', size: 'M', color: 'red', priceCents: 100, initialStock: 5 },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const order = await call<OrderView>(run.url, 'POST', '/v1/orders', {
        key: 'env-client-key-2',
        body: { sku: 'env-tee', qty: 1, userId: 'u1' },
        idempotencyKey: 'env-1',
      });
      assert.equal(order.status, 201, JSON.stringify(order.body));
      assert.equal(
        Date.parse(order.body.expiresAt) - Date.parse(order.body.createdAt),
        60_000,
        'HOTSTOCK_RESERVATION_TTL_MS',
      );
      const unknown = await call(run.url, 'GET', '/v1/skus/env-tee', { key: clientKey });
      assert.equal(unknown.status, 401, 'only the keys from the environment are known');
      assert.equal(await run.stop('SIGTERM'), 0);
      assert.ok(existsSync(join(data.dir, 'data.mdb')), 'the store lives in HOTSTOCK_DATA_DIR');
    } finally {
      await run.stop();
      data.remove();
    }
  });

  it('lets a flag win over its environment twin', async () => {
    const data = tempDataDir('hotstock-config');
    const run = await runServe(
      [
        'serve',
        '--port',
        '0',
        '--data-dir',
        data.dir,
        '--client-keys',
        'flag-client-key-1',
        '--reservation-ttl-ms',
        '120000',
      ],
      {
        // Invalid or different twins: a start that used any of them would fail or behave differently.
        HOTSTOCK_PORT: 'abc',
        HOTSTOCK_DATA_DIR: join(data.dir, 'not-this-one'),
        HOTSTOCK_CLIENT_KEYS: 'env-client-key-1',
        HOTSTOCK_ADMIN_KEYS: 'env-admin-key-1',
        HOTSTOCK_RESERVATION_TTL_MS: '60000',
      },
    );
    try {
      assert.ok(run.url, `did not start:\n${run.output}`);
      const created = await call(run.url, 'PUT', '/v1/skus/flag-tee', {
        key: 'env-admin-key-1',
        body: { product: 'p', size: 'M', color: 'red', priceCents: 100, initialStock: 5 },
      });
      assert.equal(created.status, 201, 'a twin with no flag given still applies');
      const byFlag = await call<OrderView>(run.url, 'POST', '/v1/orders', {
        key: 'flag-client-key-1',
        body: { sku: 'flag-tee', qty: 1, userId: 'u1' },
        idempotencyKey: 'flag-1',
      });
      assert.equal(byFlag.status, 201, JSON.stringify(byFlag.body));
      assert.equal(
        Date.parse(byFlag.body.expiresAt) - Date.parse(byFlag.body.createdAt),
        120_000,
        '--reservation-ttl-ms',
      );
      const byEnv = await call(run.url, 'GET', '/v1/skus/flag-tee', { key: 'env-client-key-1' });
      assert.equal(byEnv.status, 401, 'the --client-keys flag replaced HOTSTOCK_CLIENT_KEYS');
      assert.equal(await run.stop('SIGTERM'), 0);
      assert.ok(existsSync(join(data.dir, 'data.mdb')), 'the store lives in --data-dir');
      assert.ok(!existsSync(join(data.dir, 'not-this-one')), 'HOTSTOCK_DATA_DIR was not used');
    } finally {
      await run.stop();
      data.remove();
    }
  });

  it('serve --help lists every flag with its environment twin', async () => {
    const run = await runServe(['serve', '--help']);
    assert.equal(run.exitCode, 0, run.output);
    const flags = [
      'store',
      'data-dir',
      'host',
      'port',
      'admin-keys',
      'client-keys',
      'keys-file',
      'reservation-ttl-ms',
      'idempotency-ttl-ms',
      'sweep-interval-ms',
      'shutdown-grace-ms',
      'log-level',
      'demo',
      'etcd-endpoints',
      'etcd-prefix',
      'etcd-expect-members',
      'etcd-max-txn-ops',
      'etcd-quota-bytes',
      'etcd-ca',
      'etcd-cert',
      'etcd-key',
      'breaker-failures',
      'breaker-failure-rate',
      'breaker-half-open-ms',
    ];
    const text = run.output.replace(/\s+/g, ' ');
    for (const flag of flags) {
      assert.match(text, new RegExp(`--${flag}\\b`), `--${flag} is listed`);
      assert.match(text, new RegExp(`HOTSTOCK_${flag.toUpperCase().replaceAll('-', '_')}\\b`), `twin of --${flag}`);
    }
  });

  it('accepts a --data-dir whose name contains a dot, as a directory like any other', async () => {
    const data = tempDataDir('hotstock-config');
    const dataDir = join(data.dir, 'store.v1');
    mkdirSync(dataDir);
    const run = await runServe(serveArgs(dataDir));
    try {
      assert.ok(run.url, `did not start with --data-dir ${dataDir}:\n${run.output}`);
      await createSku(run.url, 'dot-tee', { initialStock: 1 });
      assert.equal(await run.stop('SIGTERM'), 0);
      assert.ok(existsSync(join(dataDir, 'data.mdb')), 'the store lives inside the directory');
    } finally {
      await run.stop();
      data.remove();
    }
  });

  it('SIGTERM with reservations in flight: exits 0 and every 201 survives the restart', async (t) => {
    const data = tempDataDir('hotstock-sigterm');
    let server: ServerProcess | undefined;
    try {
      // A short grace keeps the test quick; the next test covers how long the exit takes.
      server = await spawnServer(data.dir, ['--shutdown-grace-ms', '3000']);
      const base = server.url;
      await createSku(base, 'drain-tee', { initialStock: 100_000 });
      const acked: { key: string; body: { sku: string; qty: number; userId: string }; order: OrderView }[] = [];
      const answers = new Map<number, number>();
      let networkFailures = 0;
      let inFlight = 0;
      let inFlightAtTerm = -1;
      let answeredAfterTerm = 0;
      let sequence = 0;
      let terminated = false;
      const workerCount = 200;
      const requestsMax = 20_000;
      const deadline = performance.now() + 15_000;
      const term = () => {
        if (terminated) return;
        terminated = true;
        inFlightAtTerm = inFlight;
        server!.child.kill('SIGTERM');
      };
      // SIGTERM once some orders are acknowledged (not after a fixed time: a busy machine may answer none in time).
      const acksBeforeTerm = 30;
      await runWorkers(workerCount, async (worker) => {
        for (;;) {
          if (sequence >= requestsMax || performance.now() > deadline) return term();
          const key = `drain-${worker}-${++sequence}`;
          const body = { sku: 'drain-tee', qty: 1, userId: `user-${worker}` };
          const sentBeforeTerm = !terminated;
          inFlight++;
          let answer: Answer<OrderView> | undefined;
          try {
            answer = await call<OrderView>(base, 'POST', '/v1/orders', { body, idempotencyKey: key });
          } catch (error) {
            if (!(error instanceof NetworkFailure)) throw error;
            networkFailures++;
          } finally {
            inFlight--;
          }
          if (answer === undefined) {
            if (terminated) return;
            continue;
          }
          answers.set(answer.status, (answers.get(answer.status) ?? 0) + 1);
          if (sentBeforeTerm && terminated) answeredAfterTerm++;
          if (answer.status === 201) {
            acked.push({ key, body, order: answer.body });
            if (acked.length >= acksBeforeTerm) term();
          } else {
            // Once shutting down, new work is refused with 503; nothing else is acceptable.
            assert.equal(answer.status, 503, JSON.stringify(answer.body));
            return;
          }
        }
      });
      const exit = await server.exited;
      t.diagnostic(
        `${acked.length} orders acknowledged; ${inFlightAtTerm} in flight at SIGTERM, ${answeredAfterTerm} of those ` +
          `answered; statuses ${JSON.stringify(Object.fromEntries(answers))}; ${networkFailures} network failures`,
      );
      assert.equal(exit, 0, `exit after SIGTERM:\n${server.output().slice(-2_000)}`);
      assert.ok(inFlightAtTerm > 0, 'SIGTERM landed with reservations in flight');
      assert.ok(acked.length > 0);

      server = await spawnServer(data.dir);
      for (const { key, body, order } of acked) {
        const stored: Answer<OrderView> = await call<OrderView>(server.url, 'GET', `/v1/orders/${order.id}`);
        assert.equal(stored.status, 200, `order ${order.id} (key ${key}) lost`);
        assert.deepEqual({ sku: stored.body.sku, qty: stored.body.qty, userId: stored.body.userId }, body);
      }
      const sku = await getSku(server.url, 'drain-tee');
      assert.equal(sku.reserved, acked.length, 'every reservation in the store was acknowledged');
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      await assertLedgerExact(data.dir);
    } finally {
      await killIfRunning(server);
      data.remove();
    }
  });

  it('SIGTERM exits once in-flight work is answered, not after the whole grace period', async (t) => {
    // Clients keep their connections alive (undici's pool, like browsers and proxies); the
    // grace period is an upper bound for stuck work, not a delay every shutdown pays.
    const graceMs = 60_000;
    const exitWaitMsMax = 8_000;
    const data = tempDataDir('hotstock-sigterm');
    let server: ServerProcess | undefined;
    try {
      server = await spawnServer(data.dir, ['--shutdown-grace-ms', String(graceMs)]);
      const base = server.url;
      await createSku(base, 'quick-tee', { initialStock: 100_000 });
      let terminatedAtMs = 0;
      setTimeout(() => {
        terminatedAtMs = performance.now();
        server!.child.kill('SIGTERM');
      }, 300);
      let sequence = 0;
      await runWorkers(20, async (worker) => {
        for (let i = 0; i < 10_000 && terminatedAtMs === 0; i++) {
          const body = { sku: 'quick-tee', qty: 1, userId: `user-${worker}` };
          try {
            await call(base, 'POST', '/v1/orders', { body, idempotencyKey: `quick-${++sequence}` });
          } catch (error) {
            if (!(error instanceof NetworkFailure)) throw error;
          }
        }
      });
      const exit = await Promise.race([
        server.exited,
        new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), exitWaitMsMax)),
      ]);
      t.diagnostic(`exit ${String(exit)} ${Math.round(performance.now() - terminatedAtMs)} ms after SIGTERM`);
      assert.equal(exit, 0, `not exited ${exitWaitMsMax} ms after SIGTERM (grace ${graceMs} ms)`);
    } finally {
      await killIfRunning(server);
      data.remove();
    }
  });
});
