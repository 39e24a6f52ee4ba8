// Servers under test, each pinned to one CPU with taskset: hotstock itself
// (`hotstock serve` as a child process on a fresh data directory), the
// same-run references it is compared with (bare Fastify, the lean durable
// floor, the Redis + Lua peer with its redis-server), all started and stopped
// the same way.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EtcdCluster, freePort } from '../test/support/etcd.ts';
import { pinnedCommand } from './process.ts';

export const benchAdminKey = 'bench-admin-key';
export const benchClientKey = 'bench-client-key';
/** Instances on etcd forward each other's writes with it. */
export const benchClusterKey = 'bench-cluster-key-0123456789abcdef';
const hotstockScript = fileURLToPath(new URL('../bin/hotstock.js', import.meta.url));
const baselineScript = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));
const leanFloorScript = fileURLToPath(new URL('./lean-floor-server.ts', import.meta.url));
const redisPeerScript = fileURLToPath(new URL('./redis-peer-server.ts', import.meta.url));
/** A server that has not announced its address by then is reported as failed. */
const serverStartTimeoutMs = 60_000;
const readyPollMs = 20;
const listeningPattern = /listening at (http:\/\/127\.0\.0\.1:\d+)/i;

export interface PinnedServer {
  url: string;
  pid: number;
  dataDir: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM and wait (a clean shutdown); the data directory stays until `remove`. */
  stop(): Promise<void>;
  remove(): void;
}

export interface HotstockServerOptions {
  cpu: number;
  /** Reuse a data directory (e.g. for a cold start); a fresh one by default. */
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Open files (sockets) the server may hold; raised for thousands of connections. */
  fileDescriptorsMax?: number;
}

export async function startHotstock(options: HotstockServerOptions): Promise<PinnedServer> {
  const port = await freePort();
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'hotstock-bench-'));
  const args = [
    hotstockScript,
    'serve',
    '--data-dir',
    dataDir,
    '--port',
    String(port),
    '--admin-keys',
    benchAdminKey,
    '--client-keys',
    benchClientKey,
    '--log-level',
    'warn',
    ...(options.args ?? []),
  ];
  const server = await startPinned({
    cpu: options.cpu,
    args,
    dataDir,
    env: options.env,
    url: `http://127.0.0.1:${port}`,
    fileDescriptorsMax: options.fileDescriptorsMax,
  });
  await waitReady(server);
  return server;
}

/** Options shared by the reference servers. */
export interface ReferenceServerOptions {
  cpu: number;
  fileDescriptorsMax?: number;
}

export function startBaseline(options: ReferenceServerOptions): Promise<PinnedServer> {
  return startPinned({ ...options, args: [baselineScript], dataDir: '' });
}

/** The lean durable floor (bench/lean-floor-server.ts) on a fresh data directory, with `stock` units of each SKU. */
export function startLeanFloor(options: ReferenceServerOptions, stock: Record<string, number>): Promise<PinnedServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hotstock-floor-'));
  const args = [leanFloorScript, '--data-dir', dataDir, ...stockArgs(stock)];
  return startPinned({ ...options, args, dataDir });
}

/**
 * The Redis + Lua peer (bench/redis-peer-server.ts) and its own redis-server
 * (AOF on, fsync every second, a fresh directory), both pinned to the same
 * CPU as hotstock is. Stopping it stops both; `remove` deletes Redis's files.
 */
export async function startRedisPeer(
  options: ReferenceServerOptions,
  stock: Record<string, number>,
): Promise<PinnedServer> {
  const redis = await startRedisServer(options.cpu);
  try {
    const peer = await startPinned({
      ...options,
      args: [redisPeerScript, '--redis-url', redis.url, ...stockArgs(stock)],
      dataDir: '',
    });
    return {
      ...peer,
      output: () => `${peer.output()}\n${redis.output()}`,
      stop: async () => {
        await peer.stop();
        await redis.stop();
      },
      remove: () => redis.remove(),
    };
  } catch (error) {
    await redis.stop();
    redis.remove();
    throw error;
  }
}

function stockArgs(stock: Record<string, number>): string[] {
  return Object.entries(stock).flatMap(([sku, units]) => ['--stock', `${sku}=${units}`]);
}

/**
 * Debian's redis-server on a free loopback port and its own directory:
 * append-only file on, fsync once a second (`appendfsync everysec`, Redis's
 * recommended setting: an acknowledged write can be lost on power failure),
 * no RDB snapshots (their fork would land in some runs and not others).
 */
async function startRedisServer(cpu: number): Promise<PinnedServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'hotstock-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--daemonize', 'no'];
  args.push('--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--logfile', '');
  return startPinned({
    cpu,
    command: 'redis-server',
    args,
    dataDir,
    url: `redis://127.0.0.1:${port}`,
    readyPattern: /Ready to accept connections/,
  });
}

interface PinnedSpawn {
  cpu: number;
  /** The program; Node (this runtime) when absent. */
  command?: string;
  args: string[];
  /** Removed by `remove`; '' when the server keeps no files. */
  dataDir: string;
  env?: Record<string, string>;
  fileDescriptorsMax?: number;
  /** The URL when it is chosen before the start; otherwise the server prints "listening at <url>". */
  url?: string;
  /** With `url`: what the server prints once it accepts connections; without it, resolve at once. */
  readyPattern?: RegExp;
}

/** The server's URL once its output says it is listening, or undefined while it does not. */
function announcedUrl(output: string, options: PinnedSpawn): string | undefined {
  if (options.url === undefined) return listeningPattern.exec(output)?.[1];
  if (options.readyPattern === undefined || options.readyPattern.test(output)) return options.url;
  return undefined;
}

/**
 * Spawns a pinned server. hotstock's URL is known (the port was chosen
 * before the start, and `waitReady` polls /readyz), so it resolves at once;
 * others resolve when their output says they listen.
 */
function startPinned(options: PinnedSpawn): Promise<PinnedServer> {
  const [file, argv] = pinnedCommand(options.command ?? process.execPath, options.args, options);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  const dataDir = options.dataDir;
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not listen within ${serverStartTimeoutMs} ms:\n${output}`)),
      serverStartTimeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const url = announcedUrl(output, options);
      if (url === undefined) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      // Keep draining so a chatty server never blocks on a full pipe.
      child.stdout!.on('data', (more: Buffer) => {
        output = (output + more.toString()).slice(-20_000);
      });
      resolve({
        url,
        pid: child.pid!,
        dataDir,
        child,
        output: () => output,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
        remove: () => {
          if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        },
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    });
    onData(Buffer.alloc(0));
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited (${child.exitCode ?? child.signalCode}) before listening:\n${output}`));
    });
  });
}

/** Polls /readyz until the server is warm and listening, or fails with its output. */
async function waitReady(server: PinnedServer): Promise<void> {
  const deadline = Date.now() + serverStartTimeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`server exited before it was ready:\n${server.output()}`);
    }
    try {
      const response = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, readyPollMs));
  }
  throw new Error(`server not ready within ${serverStartTimeoutMs} ms:\n${server.output()}`);
}

/** Resident set size of a process, from /proc (bytes). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Pins every member of an etcd cluster to `cpu` (the server's, beside
 * hotstock): every thread it has (`-a`), as Go runs its work on threads
 * started before this call, which the main thread's affinity does not reach.
 */
export function pinEtcd(cpu: number, cluster: EtcdCluster): void {
  for (const member of cluster.members) {
    execFileSync('taskset', ['-a', '-pc', String(cpu), String(member.process!.pid)], { stdio: 'ignore' });
  }
}
