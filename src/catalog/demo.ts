// The demo catalog: piggy shirts in every size and a few colors, with stock,
// seeded into an empty store by `hotstock serve --demo`.
import type { Engine } from '../engine/engine.ts';
import type { Mutations } from '../engine/mutations.ts';

export const demoSizes = ['S', 'M', 'L', 'XL', 'XXL'] as const;
export const demoColors = ['red', 'pink', 'black', 'white'] as const;
const demoStockPerSku = 100;
const demoPriceCents = 1999;
const demoMaxPerUser = 2;

export function demoSkuId(size: string, color: string): string {
  return `piggy-${color}-${size.toLowerCase()}`;
}

/**
 * Creates the demo SKUs through `mutations` (the engine, or in distributed
 * mode the router to each SKU's owner); returns how many were created (0 if
 * the catalog already had SKUs).
 */
export async function seedDemoCatalog(engine: Engine, mutations: Mutations): Promise<number> {
  if (engine.skuIds().length > 0) return 0;
  let created = 0;
  for (const color of demoColors) {
    for (const size of demoSizes) {
      const entry = { product: 'piggy-shirt', size, color, priceCents: demoPriceCents, maxPerUser: demoMaxPerUser };
      const result = await mutations.upsert(demoSkuId(size, color), { entry, initialStock: demoStockPerSku }, {});
      if (!result.ok) throw new Error(`demo seed failed for ${size}/${color}: ${result.code}`);
      created++;
    }
  }
  return created;
}
