// One writing process per data directory. The embedded store numbers its
// commits in memory (so a writer can layer a commit on one still in flight),
// and the engine keeps one writer per SKU; a second `hotstock serve` or an
// import on the same directory would break both. The lock is a file naming
// the holder's pid and start time: a holder that died (kill -9, power loss)
// leaves it behind, and the next opener takes it over once it sees that
// process is gone.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const lockFileName = 'hotstock-writer.lock';

interface Holder {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not mistaken for the holder. */
  startTicks: string | null;
}

export class WriterLockHeld extends Error {
  constructor(dataDir: string, holder: Holder) {
    super(
      `another process (pid ${holder.pid}) is writing to ${dataDir}: one hotstock process may write a data directory at a time`,
    );
    this.name = 'WriterLockHeld';
  }
}

function startTicksOf(pid: number): string | null {
  try {
    // Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces, so count after its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const ticks = startTicksOf(holder.pid);
  return holder.startTicks === null || ticks === null || ticks === holder.startTicks;
}

function readHolder(path: string): Holder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof parsed.pid === 'number' ? { pid: parsed.pid, startTicks: parsed.startTicks ?? null } : undefined;
  } catch {
    return undefined; // unreadable or half-written: its writer died while writing it
  }
}

/** Takes the directory's writer lock; returns the function that releases it. */
export function acquireWriterLock(dataDir: string): () => void {
  const path = join(dataDir, lockFileName);
  const me: Holder = { pid: process.pid, startTicks: startTicksOf(process.pid) };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return () => {
        if (readHolder(path)?.pid === me.pid) rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(path);
      if (holder !== undefined && holder.pid !== me.pid && alive(holder)) throw new WriterLockHeld(dataDir, holder);
      // Left by a process that is gone: take it over.
      rmSync(path, { force: true });
    }
  }
  throw new Error(`could not take the writer lock ${path}`);
}
