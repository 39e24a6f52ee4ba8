// The error catalogue: every error a client can see, with its stable code and
// HTTP status. Codes are part of the API v1 contract; never rename one.

export const errorCatalogue = {
  validation_failed: { status: 400, title: 'Request does not match the schema' },
  invalid_json: { status: 400, title: 'Request body is not valid JSON' },
  bad_request: { status: 400, title: 'Bad request' },
  idempotency_key_required: { status: 400, title: 'Idempotency-Key header is required' },
  invalid_cursor: { status: 400, title: 'Cursor is not one this service issued' },
  invalid_watch_filter: { status: 400, title: 'Watch needs exactly one of ?sku= (a list of SKU ids) or ?product=' },
  invalid_last_event_id: { status: 400, title: 'Last-Event-ID is not a store revision' },
  unsupported_header: { status: 400, title: 'This route cannot honour a header the request sent' },
  unauthorized: { status: 401, title: 'Missing or unknown API key' },
  forbidden: { status: 403, title: 'API key lacks the role this needs' },
  not_found: { status: 404, title: 'No such resource' },
  sku_not_found: { status: 404, title: 'SKU not found' },
  order_not_found: { status: 404, title: 'Order not found' },
  move_not_found: { status: 404, title: 'No move with this id' },
  method_not_allowed: { status: 405, title: 'Method not allowed on this resource' },
  sold_out: { status: 409, title: 'Sold out' },
  insufficient_stock: { status: 409, title: 'Not enough stock for this quantity' },
  illegal_transition: { status: 409, title: 'Order cannot make this transition' },
  reservation_expired: { status: 409, title: 'Reservation has expired' },
  mirror_not_configured: { status: 409, title: 'This instance runs on one store, without a mirror' },
  mirror_not_ready: { status: 409, title: 'The initial copy into the mirror is still running' },
  move_queue_full: { status: 409, title: 'Too many moves are waiting; retry once one has finished' },
  adjustment_below_committed: { status: 409, title: 'Adjustment would leave less stock than is reserved and sold' },
  precondition_failed: { status: 412, title: 'If-Match does not match the current version' },
  payload_too_large: { status: 413, title: 'Request body is too large' },
  uri_too_long: { status: 414, title: 'Request URI is too long' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  header_fields_too_large: { status: 431, title: 'Request line or headers are too large' },
  idempotency_key_reused: { status: 422, title: 'Idempotency-Key was used with a different request' },
  per_user_limit_exceeded: { status: 422, title: 'Per-user purchase limit exceeded' },
  rate_limited: { status: 429, title: 'Too many requests; retry after the time given' },
  initial_stock_required: { status: 422, title: 'Creating a SKU needs initialStock' },
  initial_stock_not_allowed: { status: 422, title: 'initialStock only applies when creating; use adjustments' },
  overloaded: { status: 503, title: 'Too many requests are waiting; retry shortly' },
  store_unavailable: { status: 503, title: 'The store could not commit; retry shortly' },
  backend_unavailable: { status: 503, title: 'The storage backend is unreachable; retry shortly' },
  backend_no_space: { status: 503, title: 'The storage backend is out of space' },
  owner_unavailable: {
    status: 503,
    title: 'The instance that writes this SKU is changing or unreachable; retry shortly',
  },
  watch_full: { status: 503, title: 'Too many watchers are connected; retry shortly' },
  not_ready: { status: 503, title: 'Service is starting or shutting down' },
  internal_error: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/** The one error type handlers throw; the HTTP layer renders it as problem+json. */
export class HttpProblem extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    detail: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(`${code}: ${detail}`);
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.detail = detail;
    this.extra = extra;
    this.headers = headers;
  }
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  [extra: string]: unknown;
}

export function problemBody(code: ErrorCode, detail: string, extra: Record<string, unknown> = {}): ProblemBody {
  const entry = errorCatalogue[code];
  return {
    ...extra,
    type: `urn:hotstock:problem:${code}`,
    title: entry.title,
    status: entry.status,
    code,
    detail,
  };
}
