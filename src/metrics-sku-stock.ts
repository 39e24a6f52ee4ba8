// Per-SKU stock in /metrics, for a bounded set of SKUs: the
// `metricsStockSkusMax` most recently changed ones. A flash sale's hot SKUs
// change with every batch, so they stay in the set; a SKU that has not changed
// for a while makes room for one that just did. The set starts with the first
// SKUs of the warm catalog, so a quiet service still shows some stock.
//
// Every SKU's stock stays readable through GET /v1/skus; the gauges exist for
// dashboards and alerts, which need a bounded number of series.
import { Gauge, type Registry } from 'prom-client';
import { metricsStockSkusMax } from './constants.ts';
import { available } from './domain/ledger.ts';
import type { Engine } from './engine/engine.ts';

/** Recently changed SKUs, least recent first; a Map keeps insertion order, so touching is delete + set. */
export class RecentSkus {
  private readonly skus = new Map<string, true>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  touch(sku: string): void {
    this.skus.delete(sku);
    this.skus.set(sku, true);
    if (this.skus.size > this.max) this.skus.delete(this.skus.keys().next().value as string);
  }

  forget(sku: string): void {
    this.skus.delete(sku);
  }

  get size(): number {
    return this.skus.size;
  }

  ids(): string[] {
    return [...this.skus.keys()];
  }
}

export class SkuStockGauges {
  private readonly recent = new RecentSkus(metricsStockSkusMax);
  private engine: Engine | undefined;

  constructor(registry: Registry) {
    const self = this;
    new Gauge({
      name: 'hotstock_sku_stock_units',
      help: `Stock of the ${metricsStockSkusMax} most recently changed SKUs, by state (available, reserved, sold; their sum is the total)`,
      labelNames: ['sku', 'state'] as const,
      registers: [registry],
      collect() {
        // Rebuilt on every scrape, so a SKU that left the set leaves the exposition too.
        this.reset();
        const engine = self.engine;
        if (engine === undefined) return;
        for (const sku of self.recent.ids()) {
          const record = engine.getSku(sku)?.record;
          if (record === undefined) {
            self.recent.forget(sku);
            continue;
          }
          this.set({ sku, state: 'available' }, available(record));
          this.set({ sku, state: 'reserved' }, record.reserved);
          this.set({ sku, state: 'sold' }, record.sold);
        }
      },
    });
  }

  /** Reads stock from the engine; call once it is warm. The set starts with the first SKUs of the catalog. */
  follow(engine: Engine): void {
    this.engine = engine;
    for (const sku of engine.skuIds()) {
      if (this.recent.size >= metricsStockSkusMax) break;
      this.recent.touch(sku);
    }
  }

  /** A SKU committed a change (the engine's observer says so after each batch). */
  changed(sku: string): void {
    this.recent.touch(sku);
  }
}
