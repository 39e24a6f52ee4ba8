// The repository carries its own contract: docs/api.md names every error code
// of the catalogue and every flag that shapes the API, the README links it,
// and no document points outside the repository.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { errorCatalogue } from '../../src/errors.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

test('docs/api.md lists every error code with its status, and the README links it', () => {
  const api = read('docs/api.md');
  for (const [code, { status }] of Object.entries(errorCatalogue)) {
    assert.match(
      api,
      new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`),
      `${code} (${status}) in the error table`,
    );
  }
  assert.match(read('README.md'), /\]\(docs\/api\.md\)/);
  for (const text of ['"items": [', 'Idempotency-Key', 'If-None-Match', 'RateLimit-Policy', 'client keys belong to']) {
    assert.ok(api.toLowerCase().includes(text.toLowerCase()), `docs/api.md covers ${text}`);
  }
});

test('no tracked file points outside the repository', () => {
  const files = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const file of files.filter((name) => /\.(md|ts|js|json|lua)$/.test(name) && name !== 'package-lock.json')) {
    assert.doesNotMatch(read(file), /\.\.\/shared\b/, `${file} points at a folder beside the repository`);
  }
});
