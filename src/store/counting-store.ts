// A store that counts what passes through it: commits, and the writes and
// version checks they carry (applied or not). The service wraps its store in
// one so the metrics (and the benchmark, which divides by the reservations it
// made) show what each operation really costs the store.
import type { PendingCommit, VersionCheck, Write } from './contract.ts';
import { DelegatingStore } from './delegating-store.ts';

export class CountingStore extends DelegatingStore {
  commits = 0;
  writes = 0;
  checks = 0;

  override commit(checks: readonly VersionCheck[], writes: readonly Write[]): PendingCommit {
    this.commits++;
    this.writes += writes.length;
    this.checks += checks.length;
    return this.inner.commit(checks, writes);
  }
}
