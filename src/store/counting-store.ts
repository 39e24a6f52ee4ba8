// A store that counts what passes through it: commits, and the writes and
// version checks they carry (applied or not). The service wraps its store in
// one so the metrics (and the benchmark, which divides by the reservations it
// made) show what each operation really costs the store.
import type {
  ChangeListener,
  CommitResult,
  Entry,
  GapListener,
  RangeQuery,
  Store,
  StoreLimits,
  VersionCheck,
  Write,
} from './contract.ts';

export class CountingStore implements Store {
  readonly inner: Store;
  commits = 0;
  writes = 0;
  checks = 0;

  constructor(inner: Store) {
    this.inner = inner;
  }

  get kind(): Store['kind'] {
    return this.inner.kind;
  }

  get limits(): StoreLimits {
    return this.inner.limits;
  }

  get<V = unknown>(key: string): Promise<Entry<V> | undefined> {
    return this.inner.get<V>(key);
  }

  getMany<V = unknown>(keys: readonly string[]): Promise<(Entry<V> | undefined)[]> {
    return this.inner.getMany<V>(keys);
  }

  range<V = unknown>(query: RangeQuery): Promise<Entry<V>[]> {
    return this.inner.range<V>(query);
  }

  rangeMany<V = unknown>(queries: readonly RangeQuery[]): Promise<Entry<V>[][]> {
    return this.inner.rangeMany<V>(queries);
  }

  commit(checks: readonly VersionCheck[], writes: readonly Write[]): Promise<CommitResult> {
    this.commits++;
    this.writes += writes.length;
    this.checks += checks.length;
    return this.inner.commit(checks, writes);
  }

  revision(): Promise<number> {
    return this.inner.revision();
  }

  subscribe(listener: ChangeListener, onGap?: GapListener): () => void {
    return this.inner.subscribe(listener, onGap);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
