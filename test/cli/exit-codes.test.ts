// One exit-code table for every command (src/cli/exit-codes.ts): a refused
// flag, a refused twin and a missing file are all `usage` (2), whichever
// command and whoever refused it; --version prints the version; `check` on a
// missing or empty directory says so in one line.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitCodes } from '../../src/cli/exit-codes.ts';
import { runHotstock, tempDataDir } from '../support/service.ts';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const hotstock = (args: string[]) => runHotstock(args);

describe('hotstock --version', () => {
  for (const flag of ['--version', '-V']) {
    it(`${flag} prints the package version and exits 0`, async () => {
      const result = await hotstock([flag]);
      assert.equal(result.code, exitCodes.ok);
      assert.equal(result.stdout.trim(), version);
    });
  }
});

describe('check on a directory that holds no store', () => {
  it('a missing directory: one line, exit 2', async () => {
    const data = tempDataDir('hotstock-exit');
    try {
      const result = await hotstock(['check', '--data-dir', join(data.dir, 'nowhere')]);
      assert.equal(result.code, exitCodes.usage, result.stderr);
      const lines = result.stderr.trim().split('\n');
      assert.match(lines[0]!, /^error: --data-dir .*nowhere does not exist$/);
      assert.ok(lines.length <= 2, `one line (and the help hint): ${result.stderr}`);
      assert.doesNotMatch(result.stderr, /MDB_|lmdb|at /i, 'no store error or stack');
    } finally {
      data.remove();
    }
  });

  it('an empty directory: one line, exit 2', async () => {
    const data = tempDataDir('hotstock-exit');
    try {
      const result = await hotstock(['check', '--data-dir', data.dir]);
      assert.equal(result.code, exitCodes.usage, result.stderr);
      assert.match(result.stderr.trim().split('\n')[0]!, /^error: --data-dir .* is empty: there is no store to check$/);
      assert.doesNotMatch(result.stderr, /MDB_|lmdb|at /i);
    } finally {
      data.remove();
    }
  });
});

describe('every refusal before work exits 2', () => {
  const cases: [string, string[]][] = [
    ['serve: a bad value', ['serve', '--port', 'abc', '--admin-keys', 'admin-key-1']],
    ['serve: an unknown flag', ['serve', '--no-such-flag']],
    ['serve: a missing keys file', ['serve', '--port', '0', '--keys-file', '/nonexistent/keys.json']],
    [
      'serve: --tls-cert without --tls-key',
      ['serve', '--port', '0', '--admin-keys', 'admin-key-1', '--tls-cert', '/etc/hostname'],
    ],
    ['check: a bad --store', ['check', '--store', 'nosuch']],
    ['migrate: a bad --chunk-size', ['migrate', '--chunk-size', '0']],
    ['bench: a bad --rate', ['bench', '--rate', 'fast']],
    ['no command', []],
  ];
  for (const [name, args] of cases) {
    it(name, async () => {
      const result = await hotstock(args);
      assert.equal(result.code, exitCodes.usage, `${result.stdout}${result.stderr}`);
    });
  }
});
