// Running a helper process to completion (wrk, the open-loop generator,
// `hotstock check`, `hotstock migrate`), optionally pinned to one CPU, and
// collecting what it printed.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface RunOptions {
  /** Pin to this CPU with taskset. */
  cpu?: number;
  env?: Record<string, string>;
  /** Open files (sockets included) the process may hold: its soft and hard RLIMIT_NOFILE, set with prlimit. */
  fileDescriptorsMax?: number;
}

/**
 * The command line that runs `command` pinned to a CPU (taskset) and, when
 * asked, with its open-file limit set (prlimit): a server or a load generator
 * holding thousands of sockets needs more than a login shell's usual 1,024.
 */
export function pinnedCommand(command: string, args: string[], options: RunOptions): [string, string[]] {
  let argv = [command, ...args];
  if (options.cpu !== undefined) argv = ['taskset', '-c', String(options.cpu), ...argv];
  if (options.fileDescriptorsMax !== undefined) argv = ['prlimit', `--nofile=${options.fileDescriptorsMax}`, ...argv];
  return [argv[0]!, argv.slice(1)];
}

export function runProcess(command: string, args: string[], options: RunOptions = {}): Promise<ProcessResult> {
  const startedMs = performance.now();
  const [file, argv] = pinnedCommand(command, args, options);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr, ms: performance.now() - startedMs }));
  });
}

/** The JSON a tool printed on the line starting with `prefix`, or an error with all it printed. */
export function resultLine<T>(run: ProcessResult, prefix: string, what: string): T {
  const line = run.stdout.split('\n').find((text) => text.startsWith(prefix));
  if (run.code !== 0 || line === undefined) {
    throw new Error(`${what} failed (${run.code}):\n${run.stdout}${run.stderr}`);
  }
  return JSON.parse(line.slice(prefix.length)) as T;
}
