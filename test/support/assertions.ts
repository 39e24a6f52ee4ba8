// Assertions the tests share: a refused request is a well-formed problem+json
// reply from the error catalogue, and `hotstock check` finds a data dir's
// ledger exact.
import assert from 'node:assert/strict';
import { type ErrorCode, errorCatalogue } from '../../src/errors.ts';
import { type ApiResponse, runCheck } from './service.ts';

/** What a refused request must answer. */
export interface ExpectedProblem {
  status: number | readonly number[];
  code: ErrorCode | readonly ErrorCode[];
  /** 405: methods the Allow header must list. */
  allow?: readonly string[];
}

/** An HTTP reply, whether it came through fetch or a raw socket. */
export interface Reply {
  status: number;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: unknown;
}

export function replyOf(response: ApiResponse<unknown>): Reply {
  return { status: response.status, headers: Object.fromEntries(response.headers.entries()), body: response.body };
}

const list = <T>(value: T | readonly T[]): readonly T[] => (Array.isArray(value) ? value : [value as T]);

/**
 * Checks that `reply` is the 4xx problem+json the contract names: one of the
 * expected statuses and codes; {type, title, code, detail} strings and
 * body.status equal to the HTTP status; a snake_case code from the error
 * catalogue with the catalogue's status; WWW-Authenticate on a 401; the Allow
 * methods on a 405. Returns the problem body.
 */
export function assertProblemReply(reply: Reply, expected: ExpectedProblem, label: string): Record<string, unknown> {
  const statuses = list(expected.status);
  const codes = list(expected.code);
  const show = `${label}: got ${reply.status} ${reply.headers['content-type'] ?? '(no content-type)'} ${JSON.stringify(reply.body)?.slice(0, 400)}`;
  assert.ok(statuses.includes(reply.status), `${show}\n  expected status ${statuses.join(' or ')}`);
  assert.ok(reply.status >= 400 && reply.status < 500, `${show}\n  expected a 4xx`);
  assert.match(
    reply.headers['content-type'] ?? '',
    /^application\/problem\+json\s*(;|$)/,
    `${show}\n  not problem+json`,
  );
  const body = reply.body as Record<string, unknown>;
  assert.ok(typeof body === 'object' && body !== null && !Array.isArray(body), `${show}\n  body is not an object`);
  for (const field of ['type', 'title', 'code', 'detail'] as const) {
    assert.equal(typeof body[field], 'string', `${show}\n  ${field} is not a string`);
  }
  assert.ok((body.type as string).length > 0 && (body.title as string).length > 0, `${show}\n  empty type/title`);
  assert.equal(body.status, reply.status, `${show}\n  body.status differs from the HTTP status`);
  assert.match(body.code as string, /^[a-z]+(?:_[a-z]+)*$/, `${show}\n  code is not snake_case`);
  assert.ok(codes.includes(body.code as ErrorCode), `${show}\n  expected code ${codes.join(' or ')}`);
  const entry = errorCatalogue[body.code as ErrorCode];
  assert.ok(entry !== undefined, `${show}\n  code is not in the error catalogue`);
  assert.equal(entry.status, reply.status, `${show}\n  the catalogue gives ${body.code} status ${entry.status}`);
  if (reply.status === 401) assert.ok(reply.headers['www-authenticate'], `${show}\n  401 without WWW-Authenticate`);
  if (expected.allow !== undefined) {
    const allow = (reply.headers.allow ?? '').split(',').map((method) => method.trim().toUpperCase());
    for (const method of expected.allow) assert.ok(allow.includes(method), `${show}\n  Allow lacks ${method}`);
  }
  return body;
}

/** `assertProblemReply` for one expected status and code of an `api` response; returns the problem body. */
export function assertProblem(
  response: ApiResponse<unknown>,
  status: number,
  code: ErrorCode,
): Record<string, unknown> {
  return assertProblemReply(replyOf(response), { status, code }, `expected ${status} ${code}`);
}

/** Runs `hotstock check` on a stopped data dir: it must exit 0 and report the ledger exact. */
export async function assertLedgerExact(dataDir: string, label = 'hotstock check'): Promise<void> {
  const result = await runCheck(dataDir);
  assert.equal(result.code, 0, `${label}: hotstock check failed:\n${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /ledger exact/, `${label}: ${result.stdout}`);
}
