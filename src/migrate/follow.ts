// `--follow`: after the bulk copy, tail an etcd watch from the last applied
// revision + 1 (the pinned revision + 1 at first) and apply every put and
// delete under the prefix. Each watch response's changes are applied together
// with the checkpoint recording their revision, in one durable commit, so a
// restarted follower resumes the tail where it stopped and loses nothing
// (a change already applied is recognised by its revision and skipped).
import type { Etcd3, IEvent, Watcher } from 'etcd3';
import { migrateFollowQueueResponsesMax, migrateFollowRetryMs, migrateProgressIntervalMs } from '../constants.ts';
import type { Change, Checkpoint } from './checkpoint.ts';
import type { RawDestination } from './raw-destination.ts';
import { CompactedRevisionError, isCompactedError, prefixRangeEnd, rangeStart } from './source.ts';

export interface FollowOptions {
  client: Etcd3;
  destination: RawDestination;
  checkpoint: Checkpoint;
  /** Aborting stops the follower after the change it is applying. */
  signal: AbortSignal;
  log: (line: string) => void;
}

export interface FollowResult {
  checkpoint: Checkpoint;
  changes: number;
}

/** Throws CompactedRevisionError when etcd no longer has the history from `revision` on. */
async function assertNotCompacted(client: Etcd3, prefix: Buffer, revision: number): Promise<void> {
  try {
    await client.kv.range({
      key: rangeStart(prefix),
      range_end: prefixRangeEnd(prefix),
      limit: 1,
      keys_only: true,
      revision,
    });
  } catch (error) {
    if (isCompactedError(error)) {
      throw new CompactedRevisionError(
        revision,
        'the changes made since the last applied revision are gone from etcd, so the follower cannot continue ' +
          'without losing some. Start a new migration (a new --data-dir) to copy the current state, then follow from it',
      );
    }
    // A future revision (nothing written since) or a transient failure: the watch will tell.
  }
}

export async function follow(options: FollowOptions): Promise<FollowResult> {
  const { client, destination, signal, log } = options;
  const prefix = Buffer.from(options.checkpoint.prefix, 'base64');
  let checkpoint = options.checkpoint;
  let changes = 0;
  const queue: IEvent[][] = [];
  let wake: (() => void) | undefined;
  let watcher: Watcher | undefined;
  let watchFailure: unknown;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  signal.addEventListener('abort', notify, { once: true });

  const startWatch = async () => {
    await assertNotCompacted(client, prefix, checkpoint.followRevision + 1);
    const created = await client
      .watch()
      .prefix(prefix)
      .startRevision(String(checkpoint.followRevision + 1))
      .create();
    created.on('data', (response) => {
      if (created !== watcher || response.events.length === 0) return;
      queue.push(response.events);
      // A follower that falls far behind stops watching, catches up from its queue, and watches again from its checkpoint.
      if (queue.length >= migrateFollowQueueResponsesMax) stopWatch();
      notify();
    });
    created.on('error', (error) => {
      if (created !== watcher) return;
      watchFailure = error;
      stopWatch();
      notify();
    });
    // etcd3 would reconnect by itself from the revision in the last response's header, which during
    // catch-up is etcd's current revision, not the last event sent: the events between would be lost.
    // So a broken stream is watched again from the checkpoint instead, like any other failure.
    created.on('disconnected', () => {
      if (created !== watcher) return;
      watchFailure = new Error('the watch stream disconnected');
      stopWatch();
      notify();
    });
    watcher = created;
  };
  const stopWatch = () => {
    const current = watcher;
    watcher = undefined;
    current?.cancel().catch(() => {});
  };

  // The status line goes out at most once an interval, and the latest state always goes out.
  let statusTimer: NodeJS.Timeout | undefined;
  let statusDue = false;
  const status = () => {
    statusDue = true;
    if (statusTimer !== undefined) return;
    const print = () => {
      if (!statusDue) {
        statusTimer = undefined;
        return;
      }
      statusDue = false;
      log(`follow: applied through revision ${checkpoint.followRevision} (${changes} changes)`);
      statusTimer = setTimeout(print, migrateProgressIntervalMs);
    };
    print();
  };
  try {
    await startWatch();
    log(`follow: watching from revision ${checkpoint.followRevision + 1}`);
    while (!signal.aborted) {
      const events = queue.shift();
      if (events !== undefined) {
        const applied = await applyEvents(destination, checkpoint, events);
        checkpoint = applied.checkpoint;
        changes += applied.changes;
        if (applied.changes > 0) status();
        continue;
      }
      if (watcher === undefined) {
        // The watch broke (or was paused): compaction is fatal, anything else is retried from the checkpoint.
        if (watchFailure !== undefined) {
          const failure = watchFailure;
          watchFailure = undefined;
          await assertNotCompacted(client, prefix, checkpoint.followRevision + 1);
          log(`follow: watch failed (${(failure as Error).message ?? failure}); watching again`);
          await new Promise((resolve) => setTimeout(resolve, migrateFollowRetryMs));
        }
        if (!signal.aborted) await startWatch();
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stopWatch();
    clearTimeout(statusTimer);
  }
  log(`follow: stopped at revision ${checkpoint.followRevision} (${changes} changes)`);
  return { checkpoint, changes };
}

async function applyEvents(
  destination: RawDestination,
  checkpoint: Checkpoint,
  events: readonly IEvent[],
): Promise<{ checkpoint: Checkpoint; changes: number }> {
  const batch: Change[] = [];
  let revision = checkpoint.followRevision;
  for (const event of events) {
    const eventRevision = Number(event.kv.mod_revision);
    // Replayed after a re-watch: already applied.
    if (eventRevision <= checkpoint.followRevision) continue;
    revision = Math.max(revision, eventRevision);
    const key = Buffer.from(event.kv.key);
    batch.push({ key, value: event.type === 'Delete' ? undefined : Buffer.from(event.kv.value) });
  }
  if (batch.length === 0) return { checkpoint, changes: 0 };
  const next = { ...checkpoint, followRevision: revision };
  await destination.applyChanges(batch, next);
  return { checkpoint: next, changes: batch.length };
}
