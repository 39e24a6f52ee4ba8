// `hotstock serve --cpu-prof DIR`: a V8 CPU profile of the whole run, written
// when the server shuts down (SIGTERM/SIGINT) as DIR/hotstock-<pid>-<time>.cpuprofile.
// Open it in Chrome DevTools (Performance > Load profile) or any .cpuprofile viewer.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';

export interface CpuProfiler {
  /** Stops profiling and writes the profile; returns its path. */
  stop(): Promise<string>;
}

export async function startCpuProfile(dir: string): Promise<CpuProfiler> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      mkdirSync(dir, { recursive: true });
      const file = resolve(
        join(dir, `hotstock-${process.pid}-${new Date().toISOString().replaceAll(':', '-')}.cpuprofile`),
      );
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}
