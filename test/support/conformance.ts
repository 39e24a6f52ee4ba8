// Every response the HTTP tests receive is held against the server's own
// OpenAPI document (GET /docs/json of the server that answered): the status
// must be documented for the operation, the content type must be one the
// response documents, and the body must match its schema (validated with
// @hyperjump/json-schema's OpenAPI 3.1 dialect). The shared clients (`api`,
// `call`, `rawRequest`) call `assertConforms`, so the document and the server
// cannot drift apart unnoticed. What the document says of itself in its
// description holds too: an unknown path is 404 not_found, a method a path
// does not take is 405 method_not_allowed with Allow, and a request the HTTP
// parser or the URI bound refuses is 400, 414 or 431.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Validator, validate } from '@hyperjump/json-schema/openapi-3-1';
import { fetch, type RequestInit } from 'undici';

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown> };
}

export interface OpenApiOperation {
  operationId?: string;
  parameters?: {
    in: string;
    name: string;
    required?: boolean;
    description?: string;
    schema: Record<string, unknown>;
  }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema: unknown }> }>;
  security?: unknown[];
}

interface Loaded {
  document: OpenApiDocument;
  /** file:// URI of the document, for JSON pointers into it. */
  uri: string;
}

export interface ObservedResponse {
  method: string;
  /** The request target as sent: path and query. */
  target: string;
  status: number;
  /** Header lookup by lower-case name. */
  header: (name: string) => string | undefined;
  /** The body as text (empty when there is none). */
  text: string;
}

const documents = new Map<string, Promise<Loaded>>();
const validators = new Map<string, Promise<Validator>>();
const documentDir = mkdtempSync(join(tmpdir(), 'hotstock-openapi-'));
/** Codes any request can meet before it is routed: the parser, the URI bound. */
const unroutedCodes = new Map([
  [400, 'bad_request'],
  [414, 'uri_too_long'],
  [431, 'header_fields_too_large'],
]);

async function load(base: string, init: RequestInit): Promise<Loaded> {
  const response = await fetch(`${base}/docs/json`, init);
  assert.equal(response.status, 200, `GET ${base}/docs/json`);
  const text = await response.text();
  // The file name is the content's hash: servers with the same document share its compiled validators.
  const file = join(documentDir, `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.openapi.json`);
  writeFileSync(file, text);
  return { document: JSON.parse(text) as OpenApiDocument, uri: pathToFileURL(file).href };
}

/** The document of the server at `base`, fetched once (`init` carries e.g. the CA of an HTTPS test server). */
export function openApiOf(base: string, init: RequestInit = {}): Promise<Loaded> {
  let loaded = documents.get(base);
  if (loaded === undefined) {
    loaded = load(base, init);
    documents.set(base, loaded);
    loaded.catch(() => documents.delete(base));
  }
  return loaded;
}

/** The request target fetch sends for `path`: the URL parser removes dot segments (`/a/./b` is `/a/b`). */
export function targetOf(base: string, path: string): string {
  const url = new URL(`${base}${path}`);
  return `${url.pathname}${url.search}`;
}

/** Forgets the document of `base`: a server started anew on the same address may serve another. */
export function forgetOpenApi(base: string): void {
  documents.delete(base);
}

/** One JSON pointer segment, percent-encoded for a URI fragment (`{sku}`, `+` and `:` are not fragment characters). */
function pointerSegment(text: string): string {
  return encodeURIComponent(text.replaceAll('~', '~0').replaceAll('/', '~1'));
}

function validatorFor(uri: string, pointer: string): Promise<Validator> {
  const key = `${uri}#${pointer}`;
  let validator = validators.get(key);
  if (validator === undefined) {
    validator = validate(key);
    validators.set(key, validator);
  }
  return validator;
}

/** The documented path template a request path falls under, if any. */
export function templateOf(document: OpenApiDocument, path: string): string | undefined {
  for (const template of Object.keys(document.paths)) {
    // An empty segment routes to a parameter too (and is then refused by its schema).
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]*');
    if (new RegExp(`^${pattern}$`).test(path)) return template;
  }
  return undefined;
}

function mediaTypeOf(response: ObservedResponse): string {
  return (response.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

function describe(response: ObservedResponse): string {
  return `${response.method} ${response.target} -> ${response.status} ${response.header('content-type') ?? '(no content type)'} ${response.text.slice(0, 300)}`;
}

async function assertBody(loaded: Loaded, pointer: string, response: ObservedResponse): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(response.text);
  } catch {
    assert.fail(`not JSON though documented as such: ${describe(response)}`);
  }
  const check = await validatorFor(loaded.uri, pointer);
  const output = check(body as never, 'BASIC');
  assert.ok(
    output.valid,
    `body does not match the document at ${pointer}: ${describe(response)}\n${JSON.stringify((output as { errors?: unknown[] }).errors?.slice(0, 5))}`,
  );
}

/** A problem+json reply with one of `codes`, for answers the document describes in words. */
async function assertProblemOf(loaded: Loaded, response: ObservedResponse, codes: readonly string[]): Promise<void> {
  assert.equal(mediaTypeOf(response), 'application/problem+json', `not problem+json: ${describe(response)}`);
  if (response.method === 'HEAD') {
    // No body to read the code from: the status must be the one the codes have.
    const statuses: number[] = codes.map((code) =>
      code === 'not_found' ? 404 : code === 'method_not_allowed' ? 405 : 0,
    );
    assert.ok(statuses.includes(response.status), `expected ${codes.join(' or ')}: ${describe(response)}`);
    assert.equal(response.text, '', `a body in answer to HEAD: ${describe(response)}`);
    return;
  }
  await assertBody(loaded, '/components/schemas/Problem', response);
  const code = (JSON.parse(response.text) as { code?: string }).code ?? '';
  assert.ok(codes.includes(code), `expected ${codes.join(' or ')}: ${describe(response)}`);
}

async function assertOperationResponse(
  loaded: Loaded,
  pointer: string,
  operation: OpenApiOperation,
  response: ObservedResponse,
): Promise<void> {
  const documented = operation.responses[String(response.status)];
  assert.ok(documented !== undefined, `status ${response.status} is not documented: ${describe(response)}`);
  const content = documented.content ?? {};
  if (response.method === 'HEAD' || Object.keys(content).length === 0) {
    assert.equal(response.text, '', `a body where the document has none: ${describe(response)}`);
    return;
  }
  const media = mediaTypeOf(response);
  assert.ok(
    media in content,
    `content type ${media} is not documented (${Object.keys(content)}): ${describe(response)}`,
  );
  if (media.endsWith('json')) {
    await assertBody(
      loaded,
      `${pointer}/responses/${response.status}/content/${pointerSegment(media)}/schema`,
      response,
    );
  }
}

/** Fails unless `response`, as the server at `base` answered it, is one its OpenAPI document describes. */
export async function assertConforms(base: string, response: ObservedResponse, init: RequestInit = {}): Promise<void> {
  const loaded = await openApiOf(base, init);
  const path = response.target.split('?')[0]!;
  // The document and its browsable UI describe the API, not themselves.
  if (path === '/docs' || path.startsWith('/docs/')) return;
  const unrouted = unroutedCodes.get(response.status);
  if (unrouted !== undefined && mediaTypeOf(response) === 'application/problem+json' && response.method !== 'HEAD') {
    const code = (JSON.parse(response.text || '{}') as { code?: string }).code;
    if (code === unrouted) return assertProblemOf(loaded, response, [unrouted]);
  }
  const template = path.startsWith('/') ? templateOf(loaded.document, path) : undefined;
  if (template === undefined) return assertProblemOf(loaded, response, ['not_found']);
  const item = loaded.document.paths[template]!;
  const method = response.method === 'HEAD' && item.get !== undefined ? 'get' : response.method.toLowerCase();
  const operation = item[method];
  if (operation === undefined) {
    assert.equal(response.status, 405, `an undocumented method must be 405: ${describe(response)}`);
    assert.ok(response.header('allow'), `405 without Allow: ${describe(response)}`);
    return assertProblemOf(loaded, response, ['method_not_allowed']);
  }
  await assertOperationResponse(loaded, `/paths/${pointerSegment(template)}/${method}`, operation, response);
}
