// The built-in importer for the legacy shirt layout (README, "Mappings": the
// layout of the system hotstock replaces), relative to the migration prefix:
//
//   shirt:sku:<sku> -> {"name","size","color","stock","price","limit"?}
//   order:<id>      -> {"sku","qty","user","status","ts"}
//
// Anything else under the prefix is skipped (and counted).
import type { OrderState } from '../domain/types.ts';
import type { ImportRecord, RecordMapper } from './importer.ts';

/** `Piggy Shirt` -> `piggy-shirt`: lower case, accents dropped, runs of anything else become one dash. */
export function slug(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '');
}

function object(value: Buffer): Record<string, unknown> {
  const parsed: unknown = JSON.parse(value.toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('value is not a JSON object');
  return parsed as Record<string, unknown>;
}

function number(record: Record<string, unknown>, field: string): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`"${field}" must be a number`);
  return value;
}

/**
 * `prices` holds every SKU's price in cents as read at the pinned revision
 * (`order:` sorts before `shirt:`, so orders arrive before their SKUs); an
 * imported order keeps its SKU's price.
 */
export function legacyMapper(prefix: Buffer, prices: ReadonlyMap<string, number>): RecordMapper {
  const prefixText = prefix.toString('utf8');
  return ({ value, keyText }) => {
    const relative = keyText.startsWith(prefixText) ? keyText.slice(prefixText.length) : keyText;
    if (relative.startsWith('shirt:sku:')) {
      const shirt = object(value);
      const limit = shirt.limit;
      const record: ImportRecord = {
        kind: 'sku',
        sku: relative.slice('shirt:sku:'.length),
        product: slug(String(shirt.name ?? '')),
        size: shirt.size as string,
        color: shirt.color as string,
        priceCents: Math.round(number(shirt, 'price') * 100),
        maxPerUser: limit === undefined || limit === null ? null : (limit as number),
        available: shirt.stock as number,
      };
      return record;
    }
    if (relative.startsWith('order:')) {
      const order = object(value);
      return {
        kind: 'order',
        id: relative.slice('order:'.length),
        sku: order.sku as string,
        qty: order.qty as number,
        userId: order.user as string,
        state: order.status as OrderState,
        createdAtMs: order.ts as number,
        priceCents: prices.get(order.sku as string),
      };
    }
    return null;
  };
}

/** The SKU ids and prices of a legacy layout, from its `shirt:sku:` entries (for `legacyMapper`). */
export function legacyPrices(prefix: Buffer, entries: Iterable<{ key: Buffer; value: Buffer }>): Map<string, number> {
  const prices = new Map<string, number>();
  const skuPrefix = Buffer.concat([prefix, Buffer.from('shirt:sku:')]);
  for (const { key, value } of entries) {
    try {
      prices.set(key.subarray(skuPrefix.length).toString('utf8'), Math.round(number(object(value), 'price') * 100));
    } catch {
      // a bad SKU value is reported, naming its key, when the stream reaches it
    }
  }
  return prices;
}
