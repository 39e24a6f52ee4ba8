// Real etcd servers for tests (Debian's etcd-server): single-member or
// multi-member clusters on free loopback ports, each member in its own
// temporary data directory. Members can be killed and started again, so tests
// can take a member (or the leader, or all of them) away mid-load.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A member that has not reported healthy by then is reported as failed (etcd usually needs under a second). */
const memberStartTimeoutMs = 30_000;
const healthPollMs = 50;
export const etcdBinary = process.env.HOTSTOCK_TEST_ETCD ?? 'etcd';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: ChildProcess | undefined;
}

export interface EtcdCluster {
  /** Client URLs of every member, e.g. ['http://127.0.0.1:43121']. */
  endpoints: string[];
  members: EtcdMember[];
  /** Kills one member (SIGKILL by default) and waits for it to exit. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed member again on the same data directory and ports. */
  start(index: number): Promise<void>;
  /** Index of the member that is leader now, as the members report it. */
  leaderIndex(): Promise<number>;
  /** Kills every member and removes their data directories. */
  stop(): Promise<void>;
}

/** PEM files for TLS between clients and etcd (see `makeTestCertificates`). */
export interface EtcdTlsFiles {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

export interface EtcdClusterOptions {
  size?: number;
  /** Serve clients over TLS and require a client certificate signed by the CA. */
  tls?: EtcdTlsFiles;
  /** etcd's --quota-backend-bytes (default: etcd's own 2 GiB). */
  quotaBackendBytes?: number;
  extraArgs?: string[];
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const size = options.size ?? 1;
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({
      name: `member-${i}`,
      clientUrl: `${options.tls ? 'https' : 'http'}://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: mkdtempSync(join(tmpdir(), `hotstock-etcd-${i}-`)),
      process: undefined,
    });
  }
  const initialCluster = members.map((member) => `${member.name}=${member.peerUrl}`).join(',');
  const token = `hotstock-test-${process.pid}-${Date.now()}`;
  const argsOf = (member: EtcdMember): string[] => [
    `--name=${member.name}`,
    `--data-dir=${member.dataDir}`,
    `--listen-client-urls=${member.clientUrl}`,
    `--advertise-client-urls=${member.clientUrl}`,
    `--listen-peer-urls=${member.peerUrl}`,
    `--initial-advertise-peer-urls=${member.peerUrl}`,
    `--initial-cluster=${initialCluster}`,
    `--initial-cluster-token=${token}`,
    '--initial-cluster-state=new',
    '--log-level=error',
    ...(options.quotaBackendBytes ? [`--quota-backend-bytes=${options.quotaBackendBytes}`] : []),
    ...(options.tls
      ? [
          `--cert-file=${options.tls.serverCertFile}`,
          `--key-file=${options.tls.serverKeyFile}`,
          `--trusted-ca-file=${options.tls.caFile}`,
          '--client-cert-auth',
        ]
      : []),
    ...(options.extraArgs ?? []),
  ];

  const start = async (index: number): Promise<void> => {
    const member = members[index]!;
    const child = spawn(etcdBinary, argsOf(member), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    member.process = child;
    // Members of a new cluster only become healthy together, so a multi-member
    // start waits for health after launching every member.
    if (size === 1 || members.every((other) => other.process)) {
      await Promise.all(members.map((other) => waitHealthy(other, () => stderr, options.tls)));
    }
  };

  const kill = async (index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const child = members[index]!.process;
    members[index]!.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };

  const cluster: EtcdCluster = {
    endpoints: members.map((member) => member.clientUrl),
    members,
    kill,
    start,
    leaderIndex: () => leaderIndex(members),
    stop: async () => {
      await Promise.all(members.map((_, i) => kill(i)));
      for (const member of members) rmSync(member.dataDir, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < size; i++) await start(i);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** GET /health over TLS with the test client certificate. */
function tlsHealth(url: string, tls: EtcdTlsFiles): Promise<{ health?: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        ca: readFileSync(tls.caFile),
        cert: readFileSync(tls.clientCertFile),
        key: readFileSync(tls.clientKeyFile),
        timeout: 1_000,
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => {
          try {
            resolve(JSON.parse(body) as { health?: string });
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error('health timeout')));
    request.on('error', reject);
    request.end();
  });
}

async function waitHealthy(member: EtcdMember, stderr: () => string, tls?: EtcdTlsFiles): Promise<void> {
  const deadline = Date.now() + memberStartTimeoutMs;
  while (Date.now() < deadline) {
    const child = member.process;
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`etcd ${member.name} exited (${child.exitCode ?? child.signalCode}): ${stderr()}`);
    }
    try {
      const body = tls
        ? await tlsHealth(`${member.clientUrl}/health`, tls)
        : ((await (await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) })).json()) as {
            health?: string;
          });
      if (body.health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, healthPollMs));
  }
  throw new Error(`etcd ${member.name} not healthy after ${memberStartTimeoutMs} ms: ${stderr()}`);
}

/** Asks the running members for the leader's ID (etcd's JSON gateway) and maps it to a member index. */
async function leaderIndex(members: EtcdMember[]): Promise<number> {
  const statuses: { leader: string; self: string; index: number }[] = [];
  for (const [index, member] of members.entries()) {
    if (!member.process) continue;
    try {
      const response = await fetch(`${member.clientUrl}/v3/maintenance/status`, {
        method: 'POST',
        body: '{}',
        signal: AbortSignal.timeout(2_000),
      });
      const body = (await response.json()) as { header: { member_id: string }; leader: string };
      statuses.push({ leader: body.leader, self: body.header.member_id, index });
    } catch {
      // a member that does not answer is not the leader we can use
    }
  }
  const leader = statuses.find((status) => status.self === status.leader);
  if (!leader) throw new Error('no running etcd member reports itself as leader');
  return leader.index;
}

/**
 * A throwaway CA, a server certificate for 127.0.0.1 and a client certificate,
 * made with openssl in `dir`.
 */
export function makeTestCertificates(dir: string): EtcdTlsFiles {
  const file = (name: string) => `${dir}/${name}`;
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=hotstock-test-ca'].concat([
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.crt'),
    ]),
  );
  const leaf = (name: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`)].concat([
        '-out',
        file(`${name}.csr`),
      ]),
    );
    openssl(
      ['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key')].concat([
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        file(`${name}.ext`),
        '-out',
        file(`${name}.crt`),
      ]),
    );
  };
  leaf('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: file('ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
  };
}
