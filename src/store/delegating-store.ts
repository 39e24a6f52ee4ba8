// A store that hands every call to another store: the base of the
// decorators the service wraps its store in (counting what commits carry,
// fencing them in distributed mode, recording them in the cutover's outbox),
// each overriding only what it changes.
import type {
  ChangeListener,
  Entry,
  GapListener,
  PendingCommit,
  RangeQuery,
  Store,
  StoreLimits,
  VersionCheck,
  Write,
} from './contract.ts';

export class DelegatingStore implements Store {
  readonly inner: Store;

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

  commit(checks: readonly VersionCheck[], writes: readonly Write[]): PendingCommit {
    return this.inner.commit(checks, writes);
  }

  revision(): Promise<number> {
    return this.inner.revision();
  }

  subscribe(prefix: string, listener: ChangeListener, onGap?: GapListener): () => void {
    return this.inner.subscribe(prefix, listener, onGap);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
