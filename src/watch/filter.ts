// What a watcher follows: a list of SKUs (`?sku=a,b`) or every SKU of a
// product (`?product=piggy-shirt`, including SKUs added to it later).
export type WatchFilter =
  | { kind: 'skus'; key: string; skus: ReadonlySet<string> }
  | { kind: 'product'; key: string; product: string };

export function skusFilter(skus: Iterable<string>): WatchFilter {
  const set = new Set(skus);
  return { kind: 'skus', key: `skus\u0000${[...set].sort().join('\u0000')}`, skus: set };
}

export function productFilter(product: string): WatchFilter {
  return { kind: 'product', key: `product\u0000${product}`, product };
}

export function matches(filter: WatchFilter, sku: string, product: string): boolean {
  return filter.kind === 'skus' ? filter.skus.has(sku) : filter.product === product;
}
