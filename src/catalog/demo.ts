// The demo catalog: piggy shirts in every size and a few colors, with stock,
// seeded into an empty store by `hotstock serve --demo`.
import type { Engine } from '../engine/engine.ts';

export const demoSizes = ['S', 'M', 'L', 'XL', 'XXL'] as const;
export const demoColors = ['red', 'pink', 'black', 'white'] as const;
const demoStockPerSku = 100;
const demoPriceCents = 1999;
const demoMaxPerUser = 2;

export function demoSkuId(size: string, color: string): string {
  return `piggy-${color}-${size.toLowerCase()}`;
}

/** Creates the demo SKUs; returns how many were created (0 if the catalog already had SKUs). */
export async function seedDemoCatalog(engine: Engine): Promise<number> {
  if (engine.skuIds().length > 0) return 0;
  let created = 0;
  for (const color of demoColors) {
    for (const size of demoSizes) {
      const result = await engine.submit(demoSkuId(size, color), {
        kind: 'upsert',
        entry: { product: 'piggy-shirt', size, color, priceCents: demoPriceCents, maxPerUser: demoMaxPerUser },
        initialStock: demoStockPerSku,
      });
      if (!result.ok) throw new Error(`demo seed failed for ${size}/${color}: ${result.code}`);
      created++;
    }
  }
  return created;
}
