// Servers under test, each pinned to one CPU with taskset: hotstock itself
// (`hotstock serve` as a child process on a fresh data directory) and the
// same-run baseline (a bare Fastify server, bench/baseline-server.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/etcd.ts';

export const benchAdminKey = 'bench-admin-key';
export const benchClientKey = 'bench-client-key';
const hotstockScript = fileURLToPath(new URL('../bin/hotstock.js', import.meta.url));
const baselineScript = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));
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
  const server = await startPinned(options.cpu, args, dataDir, options.env, `http://127.0.0.1:${port}`);
  await waitReady(server);
  return server;
}

export function startBaseline(cpu: number): Promise<PinnedServer> {
  return startPinned(cpu, [baselineScript], '');
}

/**
 * Spawns a pinned server. With `knownUrl` (hotstock: the port was chosen
 * before the start, and `waitReady` polls /readyz) it resolves at once;
 * otherwise when the server prints "listening at <url>".
 */
function startPinned(
  cpu: number,
  args: string[],
  dataDir: string,
  env?: Record<string, string>,
  knownUrl?: string,
): Promise<PinnedServer> {
  const child = spawn('taskset', ['-c', String(cpu), process.execPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not listen within ${serverStartTimeoutMs} ms:\n${output}`)),
      serverStartTimeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const match = knownUrl ? [knownUrl, knownUrl] : listeningPattern.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      // Keep draining so a chatty server never blocks on a full pipe.
      child.stdout!.on('data', (more: Buffer) => {
        output = (output + more.toString()).slice(-20_000);
      });
      resolve({
        url: match[1]!,
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
    if (knownUrl) onData(Buffer.alloc(0));
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
