// HTTPS and rotation without a restart. `hotstock serve --tls-cert --tls-key`
// with a self-signed certificate made here by openssl answers curl
// --cacert; SIGHUP re-reads the certificate and --keys-file while clients
// keep reserving over kept-alive connections, and not one request fails: the
// old key works until the file drops it, the new one from the reload on, and
// new connections get the new certificate. A broken file on SIGHUP changes
// nothing. No key ever reaches the log.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { Agent, fetch, type RequestInit } from 'undici';
import { assertConforms, openApiOf } from '../support/conformance.ts';
import { runWorkers, sleep } from '../support/load.ts';
import {
  adminKey,
  clientKey,
  killIfRunning,
  otherClientKey,
  type ServerProcess,
  spawnServer,
  tempDataDir,
} from '../support/service.ts';

const run = promisify(execFile);
const oldKey = 'rotating-key-old-0001';
const newKey = 'rotating-key-new-0002';
/** How long the load runs at each step of the rotation; enough for many requests on every connection. */
const stepMs = 700;
/** Longest a reload may take to show (it is synchronous on SIGHUP; this is generous). */
const reloadWaitMs = 10_000;

async function selfSigned(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.cert.pem`);
  const key = join(dir, `${name}.key.pem`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=hotstock test ${name}`,
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { cert, key };
}

/** The SHA-256 fingerprint of the certificate a fresh TLS connection is given. */
function presentedFingerprint(url: string, ca: Buffer[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: undefined }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

async function fingerprintOf(certFile: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256']);
  return stdout.trim().split('=')[1]!;
}

describe('HTTPS', () => {
  const dir = tempDataDir('hotstock-tls');
  let server: ServerProcess | undefined;
  let first: { cert: string; key: string };
  let second: { cert: string; key: string };
  const certFile = join(dir.dir, 'live.cert.pem');
  const keyFile = join(dir.dir, 'live.key.pem');
  const keysFile = join(dir.dir, 'keys.json');

  before(async () => {
    first = await selfSigned(dir.dir, 'first');
    second = await selfSigned(dir.dir, 'second');
    writeFileSync(certFile, readFileSync(first.cert));
    writeFileSync(keyFile, readFileSync(first.key));
    writeFileSync(keysFile, JSON.stringify({ client: [oldKey] }));
    server = await spawnServer(join(dir.dir, 'data'), [
      '--tls-cert',
      certFile,
      '--tls-key',
      keyFile,
      '--keys-file',
      keysFile,
    ]);
  });

  after(async () => {
    await killIfRunning(server);
    dir.remove();
  });

  test('curl --cacert reaches it; curl without the CA refuses the certificate', async () => {
    const url = server!.url;
    assert.match(url, /^https:\/\//);
    const ok = await run('curl', ['-sS', '--cacert', first.cert, '-w', '\n%{http_code}', `${url}/healthz`]);
    assert.deepEqual(ok.stdout.split('\n'), ['{"status":"ok"}', '200']);
    const withKey = await run('curl', [
      '-sS',
      '--cacert',
      first.cert,
      '-H',
      `Authorization: Bearer ${clientKey}`,
      '-w',
      '\n%{http_code}',
      `${url}/v1/skus/none-such`,
    ]);
    assert.equal(withKey.stdout.split('\n').at(-1), '404');
    await assert.rejects(run('curl', ['-sS', `${url}/healthz`]), /certificate/i);
  });

  test('SIGHUP rotates the certificate and the keys under load, and no request fails', async () => {
    const url = server!.url;
    const ca = [readFileSync(first.cert), readFileSync(second.cert)];
    const dispatcher = new Agent({ connect: { ca }, connections: 8 });
    const init: RequestInit = { dispatcher };
    await openApiOf(url, init);
    const send = async (
      method: string,
      path: string,
      key: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const response = await fetch(`${url}${path}`, {
        ...init,
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      await assertConforms(
        url,
        { method, target: path, status: response.status, header: (n) => response.headers.get(n) ?? undefined, text },
        init,
      );
      return { status: response.status, text };
    };
    const created = await send('PUT', '/v1/skus/rotated', adminKey, {
      product: 'p',
      size: 'M',
      color: 'red',
      priceCents: 1,
      initialStock: 1_000_000,
    });
    assert.equal(created.status, 201, created.text);

    let key = oldKey;
    let running = true;
    let sequence = 0;
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const usedNew = new Set<number>();
    const load = runWorkers(8, async (worker) => {
      while (running) {
        const using = key;
        try {
          const reply =
            ++sequence % 2 === 0
              ? await send('GET', '/v1/skus/rotated', using)
              : await send(
                  'POST',
                  '/v1/orders',
                  using,
                  { sku: 'rotated', qty: 1, userId: `w${worker}-${sequence}` },
                  {
                    'idempotency-key': `rot-${sequence}`,
                  },
                );
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
          if (reply.status !== 200 && reply.status !== 201)
            failures.push(`${reply.status} with ${using}: ${reply.text}`);
          if (using === newKey) usedNew.add(worker);
        } catch (error) {
          failures.push(`no answer: ${(error as Error).message}`);
        }
      }
    });
    const reloadTo = async (keys: string[], tls: { cert: string; key: string }) => {
      writeFileSync(keysFile, JSON.stringify({ client: keys }));
      writeFileSync(certFile, readFileSync(tls.cert));
      writeFileSync(keyFile, readFileSync(tls.key));
      server!.child.kill('SIGHUP');
    };
    const waitFor = async (what: string, condition: () => Promise<boolean>) => {
      const deadline = Date.now() + reloadWaitMs;
      while (!(await condition())) {
        assert.ok(Date.now() < deadline, `${what} within ${reloadWaitMs} ms`);
        await sleep(20);
      }
    };
    try {
      await sleep(stepMs);
      await reloadTo([oldKey, newKey], second);
      await waitFor(
        'the new key',
        async () =>
          (await send('GET', '/healthz', newKey)).status === 200 &&
          (await send('GET', '/v1/skus/rotated', newKey)).status === 200,
      );
      assert.equal(
        await presentedFingerprint(url, ca),
        await fingerprintOf(second.cert),
        'new connections get the new certificate',
      );
      key = newKey;
      await waitFor('every worker on the new key', async () => usedNew.size === 8);
      await sleep(stepMs);
      await reloadTo([newKey], second);
      await waitFor(
        'the old key to be refused',
        async () => (await send('GET', '/v1/skus/rotated', oldKey)).status === 401,
      );
      // A broken keys file on SIGHUP is refused; the keys in force stay.
      writeFileSync(keysFile, `{"client": ["${newKey}", `);
      server!.child.kill('SIGHUP');
      await waitFor('the refused reload to be logged', async () => /reload refused/.test(server!.output()));
      await sleep(stepMs);
    } finally {
      running = false;
      await load;
      await dispatcher.close();
    }
    assert.deepEqual(failures, [], `statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.ok(
      (statuses.get(201) ?? 0) > 20 && (statuses.get(200) ?? 0) > 20,
      JSON.stringify(Object.fromEntries(statuses)),
    );
    const output = server!.output();
    for (const secret of [oldKey, newKey, adminKey, clientKey, otherClientKey]) {
      assert.ok(!output.includes(secret), `the log names the key ${secret}`);
    }
    assert.match(output, /reloaded the API keys and certificate/);
    assert.match(output, /not valid JSON","msg":"reload refused/);
  });
});
