// All key encoding in one place. Composite keys join their parts with NUL,
// which ids cannot contain (they are printable), so a prefix scan for one
// user never runs into another user whose id merely starts the same way.

const sep = '\u0000';
/** Millisecond timestamps are zero-padded so they sort as numbers. */
const timestampDigits = 15;

function ms(value: number): string {
  return String(value).padStart(timestampDigits, '0');
}

export const keys = {
  skuPrefix: 'sku/',
  sku: (sku: string) => `sku/${sku}`,

  orderPrefix: 'order/',
  order: (id: string) => `order/${id}`,

  idempotency: (scope: string, key: string) => `idem/${scope}${sep}${key}`,

  userUnitsRoot: 'user-units/',
  userUnits: (sku: string, userId: string) => `user-units/${sku}${sep}${userId}`,

  /** Audit trail of stock adjustments, in time order per SKU. */
  adjustment: (sku: string, id: string) => `adjustment/${sku}${sep}${id}`,

  catalogIndexPrefix: 'idx/catalog/',
  /** A prefix over the catalog index for the leading attributes given. */
  catalogIndexQuery: (parts: readonly string[]) => `idx/catalog/${parts.map((p) => p + sep).join('')}`,
  catalogIndex: (product: string, size: string, color: string, sku: string) =>
    `idx/catalog/${product}${sep}${size}${sep}${color}${sep}${sku}`,

  userOrdersRoot: 'idx/user-orders/',
  userOrdersPrefix: (userId: string) => `idx/user-orders/${userId}${sep}`,
  userOrders: (userId: string, orderId: string) => `idx/user-orders/${userId}${sep}${orderId}`,

  skuOrdersRoot: 'idx/sku-orders/',
  skuOrdersPrefix: (sku: string) => `idx/sku-orders/${sku}${sep}`,
  skuOrders: (sku: string, orderId: string) => `idx/sku-orders/${sku}${sep}${orderId}`,

  orderExpiryPrefix: 'idx/order-expiry/',
  orderExpiry: (expiresAtMs: number, orderId: string) => `idx/order-expiry/${ms(expiresAtMs)}${sep}${orderId}`,
  /** First key after every order-expiry entry due at or before `nowMs`. */
  orderExpiryDueEnd: (nowMs: number) => `idx/order-expiry/${ms(nowMs + 1)}`,

  idempotencyExpiryPrefix: 'idx/idem-expiry/',
  idempotencyExpiry: (expiresAtMs: number, idemKey: string) => `idx/idem-expiry/${ms(expiresAtMs)}${sep}${idemKey}`,
  idempotencyExpiryDueEnd: (nowMs: number) => `idx/idem-expiry/${ms(nowMs + 1)}`,

  /** The last NUL-separated part of a composite key (an order id, a SKU id, ...). */
  lastPart: (key: string) => key.slice(key.lastIndexOf(sep) + 1),
  /** The part after the first NUL of an expiry entry: the key it points at. */
  afterTimestamp: (key: string) => key.slice(key.indexOf(sep) + 1),
} as const;
