// The OpenAPI document at /docs/json is a valid OpenAPI 3.1 document
// (validated against the specification's schema with @hyperjump/json-schema)
// and says what a generated client needs: an operationId on every operation,
// named schemas, security per route (none for the operations endpoints and
// the watch preflight), problem+json errors with their codes, and bounds a
// client can reach. Every response the HTTP tests receive is checked against
// it (test/support/conformance.ts); this file checks the document itself.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { validate } from '@hyperjump/json-schema/openapi-3-1';
import { requestUriBytesMax } from '../../src/constants.ts';
import { errorCatalogue } from '../../src/errors.ts';
import type { OpenApiDocument } from '../support/conformance.ts';
import { api, useTestService } from '../support/service.ts';

const specification = 'https://spec.openapis.org/oas/3.1/schema-base';
const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

const server = useTestService();
const publicWatch = useTestService({ watchPublic: true });
let document: OpenApiDocument;

before(async () => {
  await server.ready;
  document = (await api<OpenApiDocument>(server.url, 'GET', '/docs/json', { key: null })).body;
});

function operations(doc: OpenApiDocument) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    methods
      .filter((method) => item[method] !== undefined)
      .map((method) => ({ path, method, operation: item[method]! })),
  );
}

describe('the document', () => {
  test('is valid OpenAPI 3.1, and the check would notice one that is not', async () => {
    const output = await validate(specification, document as never, 'BASIC');
    assert.ok(output.valid, JSON.stringify((output as { errors?: unknown[] }).errors?.slice(0, 5)));
    const broken = structuredClone(document);
    delete (broken.paths['/v1/orders']!.post!.responses['201'] as { description?: string }).description;
    assert.equal((await validate(specification, broken as never)).valid, false, 'a response without a description');
    assert.equal((await validate(specification, { ...document, openapi: '3.1' } as never)).valid, false);
  });

  test('every operation has a unique operationId; resources and bodies are named schemas', () => {
    const ids = operations(document).map(({ operation }) => operation.operationId);
    assert.ok(
      ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)),
      ids.join(', '),
    );
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    for (const name of [
      'Sku',
      'Order',
      'SkuPage',
      'OrderPage',
      'Problem',
      'Reservation',
      'BatchRequest',
      'Adjustment',
    ]) {
      assert.ok(document.components.schemas[name], `#/components/schemas/${name}`);
    }
    const reserve = document.paths['/v1/orders']!.post!;
    assert.deepEqual(reserve.requestBody?.content['application/json']?.schema, {
      $ref: '#/components/schemas/Reservation',
    });
    assert.ok(document.paths['/v1/orders:batch']?.post, 'the batch path as clients call it');
  });

  test('security per route: none for the operations endpoints, the operator page and the watch preflight; a key elsewhere', () => {
    for (const { path, method, operation } of operations(document)) {
      const open =
        ['/healthz', '/readyz', '/metrics'].includes(path) ||
        path.startsWith('/ui') ||
        (path === '/v1/watch' && method === 'options');
      if (open) assert.deepEqual(operation.security, [], `${method} ${path} needs no key`);
      else assert.equal(operation.security, undefined, `${method} ${path} takes the document's bearer key`);
      assert.equal(
        open,
        operation.responses['401'] === undefined,
        `${method} ${path}: 401 documented iff a key is needed`,
      );
    }
  });

  test('with --watch-public the watch needs no key, and says so', async () => {
    const doc = (await api<OpenApiDocument>(publicWatch.url, 'GET', '/docs/json', { key: null })).body;
    assert.deepEqual(doc.paths['/v1/watch']!.get!.security, []);
    assert.equal(doc.paths['/v1/watch']!.get!.responses['401'], undefined);
  });

  test('every error is problem+json listing the codes of its status, each in the catalogue', () => {
    for (const { path, method, operation } of operations(document)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        const content = response.content ?? {};
        assert.deepEqual(Object.keys(content), ['application/problem+json'], `${method} ${path} ${status}`);
        const schema = content['application/problem+json']!.schema as { properties: { code: { enum: string[] } } };
        for (const code of schema.properties.code.enum) {
          assert.equal(
            errorCatalogue[code as keyof typeof errorCatalogue]?.status,
            Number(status),
            `${code} under ${status}`,
          );
        }
      }
    }
    const codes = (path: string, method: string, status: number) =>
      (
        document.paths[path]![method]!.responses[String(status)]?.content?.['application/problem+json']?.schema as
          | { properties: { code: { enum: string[] } } }
          | undefined
      )?.properties.code.enum ?? [];
    assert.deepEqual(codes('/v1/admin/status', 'get', 403), ['forbidden']);
    assert.ok(codes('/v1/admin/status', 'get', 503).includes('not_ready'));
    assert.ok(codes('/v1/orders', 'post', 409).includes('sold_out'));
    assert.ok(codes('/v1/orders', 'post', 429).includes('rate_limited'));
    assert.ok(codes('/v1/skus/{sku}', 'put', 412).includes('precondition_failed'));
    assert.ok(codes('/v1/orders', 'post', 413).includes('payload_too_large'));
    assert.ok(codes('/v1/orders', 'post', 400).includes('idempotency_key_required'));
    assert.ok(codes('/v1/skus/{sku}/adjustments', 'post', 400).includes('idempotency_key_required'));
  });

  test('Idempotency-Key is required where the server requires it', () => {
    const keyOf = (path: string, method: string) =>
      document.paths[path]![method]!.parameters?.find((parameter) => parameter.name === 'idempotency-key');
    assert.equal(keyOf('/v1/orders', 'post')?.required, true);
    assert.equal(keyOf('/v1/skus/{sku}/adjustments', 'post')?.required, true);
    assert.equal(keyOf('/v1/skus/{sku}', 'put')?.required, false);
    assert.equal(keyOf('/v1/orders:batch', 'post'), undefined, 'the batch items carry their own keys');
  });

  test('the watch: 204 preflight, digits for revisions, exactly one of sku or product, reachable lengths', () => {
    const watch = document.paths['/v1/watch']!;
    assert.ok(watch.options!.responses['204'], 'OPTIONS answers 204');
    const get = watch.get!;
    assert.ok(get.responses['200']!.content!['text/event-stream']);
    const parameter = (name: string) => get.parameters!.find((p) => p.name === name)!;
    assert.match(String(parameter('lastEventId').schema.pattern), /^\^\[0-9\]\{1,\d+\}\$$/);
    assert.match(String(parameter('last-event-id').schema.pattern), /^\^\[0-9\]/);
    assert.match(String(parameter('sku').description), /exactly one of sku or product/);
    assert.match(String(parameter('product').description), /exactly one of sku or product/);
    const skuMax = Number(parameter('sku').schema.maxLength);
    assert.ok('/v1/watch?sku='.length + skuMax + '&lastEventId='.length + 16 <= requestUriBytesMax);
  });

  test('a sku list of the documented maximum length is served, not refused for its length', async () => {
    const get = document.paths['/v1/watch']!.get!;
    const skuMax = Number(get.parameters!.find((p) => p.name === 'sku')!.schema.maxLength);
    const list = 'x'.repeat(skuMax);
    const response = await api(server.url, 'GET', `/v1/watch?sku=${list}&lastEventId=1234567890123456`);
    assert.equal(response.status, 400, 'an id that long is refused as a filter, not as a URI');
    assert.equal((response.body as { code: string }).code, 'invalid_watch_filter');
  });
});
