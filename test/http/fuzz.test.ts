// Requests generated from the server's own OpenAPI document with fast-check:
// valid ones (parameters and bodies drawn from the documented schemas, ids
// from the resources that exist) and mutated ones (a field dropped, added,
// retyped or overlong, broken JSON, a wrong content type, no key, a wrong
// key, a header the route cannot honour, an undocumented method). For every
// one: never a 5xx; never a response the document does not describe (the
// shared client checks each one, see conformance.ts); a refused request
// leaves the store revision where it was. At the end `hotstock check` finds
// the ledger exact. Bounded in runs and in time; HOTSTOCK_TEST_SEED replays.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import fc from 'fast-check';
import { freshSku, reserveOk } from '../support/api-helpers.ts';
import { assertLedgerExact } from '../support/assertions.ts';
import type { OpenApiDocument, OpenApiOperation } from '../support/conformance.ts';
import { testSeed } from '../support/load.ts';
import { adminKey, api, clientKey, useTestService } from '../support/service.ts';

const runsMax = 400;
const fuzzTimeMs = 30_000;
/** Generated strings and arrays stay short: the bounds themselves are covered by the mutations and bad-input tests. */
const generatedLengthMax = 24;
const methods = ['get', 'put', 'post', 'options'] as const;

type Schema = Record<string, unknown>;

const server = useTestService();
let doc: OpenApiDocument;
const knownSkus: string[] = [];
const knownOrders: string[] = [];

before(async () => {
  await server.ready;
  doc = (await api<OpenApiDocument>(server.url, 'GET', '/docs/json', { key: null })).body;
  for (let i = 0; i < 3; i++) knownSkus.push(await freshSku(server.url, 'fuzz', 50, 5));
  for (const sku of knownSkus) knownOrders.push((await reserveOk(server.url, sku, 1, 'fuzz-user')).id);
});

function resolve(schema: Schema): Schema {
  const ref = schema.$ref as string | undefined;
  if (ref === undefined) return schema;
  return doc.components.schemas[ref.replace('#/components/schemas/', '')] as Schema;
}

/** Printable characters, a few beyond ASCII, none a space or control character. */
const idCharacter = fc.constantFrom(...'abcXYZ019-_.:@~é字', 'piggy');
/** Header values travel as bytes (RFC 9110 §5.5): ASCII only. */
const headerCharacter = fc.constantFrom(...'abcXYZ019-_.:@~"*/', 'W/');

/** Values of a (request) schema: the subset of JSON Schema the document's request schemas use. */
function schemaValue(raw: Schema, unit: fc.Arbitrary<string> = idCharacter): fc.Arbitrary<unknown> {
  const schema = resolve(raw);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  if (Array.isArray(schema.type))
    return fc.oneof(...(schema.type as string[]).map((type) => schemaValue({ ...schema, type })));
  switch (schema.type) {
    case 'null':
      return fc.constant(null);
    case 'integer': {
      const min = (schema.minimum as number | undefined) ?? -1_000;
      const max = (schema.maximum as number | undefined) ?? 1_000;
      const excluded = (schema.not as Schema | undefined)?.const;
      return fc
        .oneof(fc.integer({ min, max: Math.min(max, min + 10) }), fc.integer({ min, max }))
        .filter((v) => v !== excluded);
    }
    case 'string': {
      const minLength = (schema.minLength as number | undefined) ?? 0;
      const maxLength = Math.max(
        minLength,
        Math.min((schema.maxLength as number | undefined) ?? generatedLengthMax, generatedLengthMax),
      );
      return fc
        .string({ unit, minLength, maxLength })
        .filter((text) => text.length <= ((schema.maxLength as number) ?? Infinity));
    }
    case 'array':
      return fc.array(schemaValue(schema.items as Schema), {
        minLength: (schema.minItems as number) ?? 0,
        maxLength: 3,
      });
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      const record = Object.fromEntries(
        Object.entries(properties).map(([name, property]) => [name, schemaValue(property)]),
      );
      return fc.record(record, { requiredKeys: (schema.required as string[] | undefined) ?? [] });
    }
    default:
      return fc.anything();
  }
}

/** Ids that exist half of the time, so valid requests reach the engine; headers in ASCII. */
function parameterValue(place: string, name: string, schema: Schema): fc.Arbitrary<unknown> {
  if (place === 'header') return schemaValue(schema, headerCharacter);
  const known = name === 'id' ? knownOrders : name === 'sku' ? knownSkus : [];
  return known.length === 0 ? schemaValue(schema) : fc.oneof(fc.constantFrom(...known), schemaValue(schema));
}

interface Generated {
  method: string;
  path: string;
  /** The operation's security as documented (undefined: the bearer key). */
  secured: boolean;
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: unknown;
}

function requestOf(path: string, method: string, operation: OpenApiOperation): fc.Arbitrary<Generated> {
  const parameters = operation.parameters ?? [];
  const group = (place: string) =>
    fc.record(
      Object.fromEntries(
        parameters.filter((p) => p.in === place).map((p) => [p.name, parameterValue(place, p.name, p.schema)]),
      ),
      { requiredKeys: parameters.filter((p) => p.in === place && p.required).map((p) => p.name) },
    );
  const bodySchema = operation.requestBody?.content['application/json']?.schema as Schema | undefined;
  return fc.record({
    method: fc.constant(method.toUpperCase()),
    path: fc.constant(path),
    secured: fc.constant(operation.security === undefined),
    params: group('path'),
    query: group('query'),
    headers: group('header'),
    body: bodySchema === undefined ? fc.constant(undefined) : schemaValue(bodySchema),
  });
}

const mutations = [
  'none',
  'none',
  'none',
  'drop-field',
  'add-field',
  'retype-field',
  'overlong',
  'broken-json',
  'text-body',
  'no-key',
  'wrong-key',
  'client-key',
  'unhonoured-header',
  'undocumented-method',
  'bad-query',
] as const;
type Mutation = (typeof mutations)[number];

interface Sent {
  method: string;
  path: string;
  key: string | null;
  headers: Record<string, string>;
  body?: unknown;
  rawBody?: string;
}

function mutate(request: Generated, mutation: Mutation, field: string): Sent {
  const secured = request.secured;
  let path = request.path.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(String(request.params[name] ?? '')),
  );
  const query = new URLSearchParams(Object.entries(request.query).map(([k, v]): [string, string] => [k, String(v)]));
  const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
  let body = request.body === undefined ? undefined : structuredClone(request.body);
  const object =
    body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  const sent: Sent = { method: request.method, path: '', key: secured ? adminKey : null, headers };
  switch (mutation) {
    case 'drop-field':
      if (object) delete object[Object.keys(object)[0] ?? field];
      break;
    case 'add-field':
      if (object) object[`x${field}`] = 1;
      else query.set(`x${field}`, '1');
      break;
    case 'retype-field':
      if (object) object[Object.keys(object)[0] ?? field] = [field];
      break;
    case 'overlong':
      if (object) object[Object.keys(object)[0] ?? field] = 'y'.repeat(300);
      else path = `${path}${'z'.repeat(200)}`;
      break;
    case 'broken-json':
      sent.rawBody = '{"sku":';
      headers['content-type'] = 'application/json';
      break;
    case 'text-body':
      sent.rawBody = field;
      headers['content-type'] = 'text/plain';
      break;
    case 'no-key':
      sent.key = null;
      break;
    case 'wrong-key':
      sent.key = 'not-a-key-of-this-server';
      break;
    case 'client-key':
      sent.key = clientKey;
      break;
    case 'unhonoured-header':
      headers['if-unmodified-since'] = 'Wed, 21 Oct 2015 07:28:00 GMT';
      break;
    case 'undocumented-method':
      sent.method = request.method === 'PUT' ? 'PATCH' : 'DELETE';
      break;
    case 'bad-query':
      query.set('limit', '1e2');
      break;
  }
  if (body !== undefined && sent.rawBody === undefined) sent.body = body;
  body = undefined;
  // The watch streams until closed: ask for its head only.
  if (request.path === '/v1/watch' && sent.method === 'GET') sent.method = 'HEAD';
  sent.path = query.size > 0 ? `${path}?${query}` : path;
  // fetch sends no body with GET or HEAD.
  if (sent.method === 'GET' || sent.method === 'HEAD') {
    delete sent.body;
    delete sent.rawBody;
    delete headers['content-type'];
  }
  return sent;
}

async function revision(): Promise<number> {
  const status = await api<{ store: { revision: number } }>(server.url, 'GET', '/v1/admin/status', { key: adminKey });
  assert.equal(status.status, 200);
  return status.body.store.revision;
}

test('generated and mutated requests: never a 5xx, never undocumented, a refusal changes nothing', async (t) => {
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    methods.filter((method) => item[method]).map((method) => requestOf(path, method, item[method]!)),
  );
  const seed = testSeed();
  t.diagnostic(`seed ${seed} (HOTSTOCK_TEST_SEED=${seed} replays it)`);
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(...operations),
      fc.constantFrom(...mutations),
      fc.string({ unit: idCharacter, minLength: 1, maxLength: 8 }),
      async (request, mutation, field) => {
        const sent = mutate(request, mutation, field);
        const before = await revision();
        const response = await api(server.url, sent.method, sent.path, {
          key: sent.key,
          headers: sent.headers,
          ...(sent.rawBody !== undefined ? { rawBody: sent.rawBody } : {}),
          ...(sent.body !== undefined ? { body: sent.body } : {}),
          timeoutMs: 10_000,
        });
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        assert.ok(
          response.status < 500,
          `${sent.method} ${sent.path} -> ${response.status} ${JSON.stringify(response.body)}`,
        );
        if (response.status >= 400)
          assert.equal(await revision(), before, `${sent.method} ${sent.path} was refused yet changed the store`);
      },
    ),
    { numRuns: runsMax, seed, interruptAfterTimeLimit: fuzzTimeMs, markInterruptAsFailure: false },
  );
  t.diagnostic(`statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
  const accepted = [...statuses].filter(([status]) => status < 300).reduce((sum, [, n]) => sum + n, 0);
  const refused = [...statuses].filter(([status]) => status >= 400).reduce((sum, [, n]) => sum + n, 0);
  assert.ok(accepted > 20 && refused > 20, 'both valid and refused requests were sent');
  await server.current.stop();
  await assertLedgerExact(server.current.dataDir, 'after the fuzz');
});
