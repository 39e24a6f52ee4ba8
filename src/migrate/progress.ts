// Progress of a migration: a bar on a terminal (keys, bytes, keys/s, ETA),
// plain lines at most once a second otherwise (logs, CI, tests).
import cliProgress from 'cli-progress';
import { migrateProgressIntervalMs } from '../constants.ts';

export interface Progress {
  /** Keys and bytes copied so far (including those of earlier, resumed runs). */
  update(keys: number, bytes: number): void;
  stop(): void;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/** Progress toward `totalKeys`, counting speed from the keys this run copied (`startKeys` were copied before). */
export function createProgress(totalKeys: number, startKeys: number, stream: NodeJS.WriteStream): Progress {
  const startedAt = performance.now();
  const rate = (keys: number) => (keys - startKeys) / Math.max((performance.now() - startedAt) / 1000, 1e-3);
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: 'migrate [{bar}] {percentage}% | {value}/{total} keys | {size} | {rate} keys/s | ETA {eta_formatted}',
        stream,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(totalKeys, startKeys, { size: formatBytes(0), rate: 0 });
    return {
      update: (keys, bytes) => bar.update(keys, { size: formatBytes(bytes), rate: Math.round(rate(keys)) }),
      stop: () => bar.stop(),
    };
  }
  // Speed counts from the first committed chunk, so the time spent listing keys before it does not skew the ETA.
  let base: { at: number; keys: number } | undefined;
  let lastLineAt = 0;
  const line = (keys: number, bytes: number) => {
    const seconds = base ? (performance.now() - base.at) / 1000 : 0;
    const perSecond = base && seconds > 0 ? (keys - base.keys) / seconds : 0;
    const eta = perSecond > 0 ? formatDuration(((totalKeys - keys) / perSecond) * 1000) : '?';
    stream.write(
      `migrate: ${keys}/${totalKeys} keys, ${formatBytes(bytes)}, ${Math.round(perSecond)} keys/s, ETA ${eta}\n`,
    );
  };
  let last = { keys: startKeys, bytes: 0 };
  return {
    update: (keys, bytes) => {
      last = { keys, bytes };
      const now = performance.now();
      if (now - lastLineAt < migrateProgressIntervalMs) return;
      lastLineAt = now;
      line(keys, bytes);
      base ??= { at: now, keys };
    },
    stop: () => line(last.keys, last.bytes),
  };
}
