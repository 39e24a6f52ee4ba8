// Child processes of the watch benchmark, each pinned to one CPU with
// taskset and driven over Node's IPC channel (which survives taskset's exec:
// the channel is an inherited file descriptor).
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Longest one request to a child may take (connecting 10,000 watchers, 50,000 churn cycles). */
const replyTimeoutMs = 600_000;

export interface IpcChild {
  child: ChildProcess;
  pid: number;
  /** Sends `message` and resolves with the next message of type `replyType`. */
  ask<T = Record<string, unknown>>(message: Record<string, unknown>, replyType: string): Promise<T>;
  /** The child's first message, `{type:'ready', ...}` (servers put their URL in it). */
  ready: Record<string, unknown>;
  /** Waits for the child to exit (after asking it to stop, or killing it). */
  exited: Promise<void>;
  output(): string;
  kill(): void;
}

export async function spawnIpc(
  cpu: number,
  script: string,
  args: string[],
  nodeFlags: string[] = [],
): Promise<IpcChild> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const child = spawn('taskset', ['-c', String(cpu), process.execPath, ...nodeFlags, path, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const nextMessage = <T>(type: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`no ${type} from ${script} within ${replyTimeoutMs} ms`)),
        replyTimeoutMs,
      );
      const onMessage = (message: { type?: string }) => {
        if (message.type === type) done(undefined, message as T);
      };
      const onExit = () => done(new Error(`${script} exited before answering ${type}:\n${output}`));
      function done(error: Error | undefined, value?: T): void {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (error) reject(error);
        else resolve(value as T);
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const ready = await nextMessage<Record<string, unknown>>('ready');
  return {
    child,
    ready,
    pid: child.pid!,
    ask: <T>(message: Record<string, unknown>, replyType: string) => {
      const reply = nextMessage<T>(replyType);
      child.send(message);
      return reply;
    },
    exited,
    output: () => output,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
