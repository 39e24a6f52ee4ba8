// Environment twins of switches are strict, for every switch of every
// command: true/1/yes (any case) turn it on, false/0/no turn it off, anything
// else is refused naming the variable, and a switch given on the command
// line wins. The table-driven part parses the real command line in-process
// (every switch the commands declare, so a new one is covered by itself); the
// process part runs `hotstock serve` and `hotstock migrate` as a user would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Command, CommanderError, Option } from 'commander';
import { exitCodes } from '../../src/cli/exit-codes.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { demoKeys } from '../../src/credentials.ts';
import { mainScript, tempDataDir } from '../support/service.ts';

const onWords = ['true', '1', 'yes', 'TRUE', 'Yes'];
const offWords = ['false', '0', 'no', 'FALSE', 'No'];
const refusedWords = ['banana', '', 'on', '2', 'truee'];

interface Parsed {
  value?: unknown;
  error?: CommanderError;
}

/** Parses `hotstock <command> <args>` with `env` set, running no action: the switch's value, or the refusal. */
async function parse(
  commandName: string,
  attribute: string,
  args: string[],
  env: Record<string, string>,
): Promise<Parsed> {
  const program = buildProgram();
  const command = program.commands.find((candidate) => candidate.name() === commandName)!;
  let value: unknown;
  for (const each of [program, command]) {
    each.exitOverride();
    each.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  }
  command.action(() => {
    value = command.opts()[attribute];
  });
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    await program.parseAsync(['node', 'hotstock', commandName, ...args]);
    return { value };
  } catch (error) {
    return { error: error as CommanderError };
  } finally {
    for (const name of Object.keys(env)) delete process.env[name];
    Object.assign(process.env, saved);
  }
}

function switchesOf(command: Command): Option[] {
  return command.options.filter((option) => option.isBoolean() && option.long !== '--help');
}

const program = buildProgram();

describe('every flag of every command has an environment twin', () => {
  for (const command of program.commands) {
    it(`hotstock ${command.name()}`, () => {
      for (const option of command.options) {
        assert.match(option.envVar ?? '', /^HOTSTOCK_[A-Z0-9_]+$/, `${command.name()} ${option.long} has a twin`);
      }
    });
  }
});

describe('switch twins are strict, for every switch of every command', () => {
  const switches = program.commands.flatMap((command) =>
    switchesOf(command).map((option) => ({ command: command.name(), option })),
  );
  it('the commands have switches to check', () => {
    const names = switches.map(({ command, option }) => `${command} ${option.long}`);
    for (const expected of ['serve --demo', 'serve --watch-public', 'migrate --dry-run', 'check --json']) {
      assert.ok(names.includes(expected), `${expected} is among ${names.join(', ')}`);
    }
  });
  for (const { command, option } of switches) {
    const twin = option.envVar!;
    const attribute = option.attributeName();
    it(`${command} ${option.long} (${twin})`, async () => {
      assert.equal((await parse(command, attribute, [], {})).value, undefined, 'off when neither is given');
      for (const word of onWords) {
        const parsed = await parse(command, attribute, [], { [twin]: word });
        assert.equal(parsed.value, true, `${twin}=${JSON.stringify(word)} turns it on (${parsed.error?.message})`);
      }
      for (const word of offWords) {
        const parsed = await parse(command, attribute, [], { [twin]: word });
        assert.equal(parsed.value, false, `${twin}=${JSON.stringify(word)} leaves it off (${parsed.error?.message})`);
      }
      for (const word of refusedWords) {
        const parsed = await parse(command, attribute, [], { [twin]: word });
        assert.ok(parsed.error, `${twin}=${JSON.stringify(word)} is refused`);
        assert.equal(parsed.error.exitCode, exitCodes.usage);
        assert.match(parsed.error.message, new RegExp(`\\b${twin}\\b`), 'the refusal names the variable');
      }
      const flagWins = await parse(command, attribute, [option.long!], { [twin]: 'false' });
      assert.equal(flagWins.value, true, `${option.long} on the command line wins over ${twin}=false`);
    });
  }
});

interface Run {
  code: number | null;
  output: string;
  /** Set when the server printed its address (it is then stopped by the caller). */
  url?: string;
  stop: () => Promise<void>;
}

/** Runs hotstock with only the HOTSTOCK_* variables given; resolves when it exits or listens. */
function run(args: string[], env: Record<string, string>): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HOTSTOCK_')));
  const child = spawn(process.execPath, [mainScript, ...args], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve({ code: null, output, url: match[1]!, stop });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', (code) => resolve({ code, output, stop }));
  });
}

describe('as a user meets them', () => {
  it('HOTSTOCK_DEMO=false seeds nothing and accepts no demo key; =true does; =banana stops the start', async () => {
    const data = tempDataDir('hotstock-twins');
    try {
      const off = await run(['serve', '--data-dir', data.dir, '--port', '0'], { HOTSTOCK_DEMO: 'false' });
      await off.stop();
      assert.equal(off.url, undefined, `started with HOTSTOCK_DEMO=false and no keys:\n${off.output}`);
      assert.equal(off.code, exitCodes.usage, off.output);
      assert.match(off.output, /no API keys/);

      const banana = await run(['serve', '--data-dir', data.dir, '--port', '0'], { HOTSTOCK_DEMO: 'banana' });
      assert.equal(banana.url, undefined);
      assert.equal(banana.code, exitCodes.usage, banana.output);
      assert.match(banana.output, /HOTSTOCK_DEMO must be one of true, false, 1, 0, yes, no/);
      assert.equal(banana.output.trim().split('\n').length <= 2, true, `one line and a hint:\n${banana.output}`);

      const on = await run(['serve', '--data-dir', data.dir, '--port', '0'], { HOTSTOCK_DEMO: 'TRUE' });
      try {
        assert.ok(on.url, on.output);
        const sku = await fetch(`${on.url}/v1/skus/piggy-red-m`, {
          headers: { authorization: `Bearer ${demoKeys.client}` },
        });
        assert.equal(sku.status, 200, 'the demo catalog and key are there');
      } finally {
        await on.stop();
      }
    } finally {
      data.remove();
    }
  });

  it('HOTSTOCK_WATCH_PUBLIC=0 keeps the watch behind a key; =yes opens it', async () => {
    const data = tempDataDir('hotstock-twins');
    try {
      for (const [value, status] of [
        ['0', 401],
        ['no', 401],
        ['yes', 200],
      ] as const) {
        const server = await run(['serve', '--data-dir', data.dir, '--port', '0', '--demo'], {
          HOTSTOCK_WATCH_PUBLIC: value,
        });
        try {
          assert.ok(server.url, server.output);
          const watch = await fetch(`${server.url}/v1/watch?sku=piggy-red-m`, { method: 'HEAD' });
          assert.equal(watch.status, status, `HOTSTOCK_WATCH_PUBLIC=${value}`);
        } finally {
          await server.stop();
        }
      }
    } finally {
      data.remove();
    }
  });

  it('migrate refuses HOTSTOCK_DRY_RUN=banana before touching etcd or the data directory', async () => {
    const data = tempDataDir('hotstock-twins');
    try {
      const dir = join(data.dir, 'dest');
      mkdirSync(dir);
      const result = await run(['migrate', '--etcd-endpoints', 'http://127.0.0.1:1', '--data-dir', dir], {
        HOTSTOCK_DRY_RUN: 'banana',
      });
      assert.equal(result.code, exitCodes.usage, result.output);
      assert.match(result.output, /HOTSTOCK_DRY_RUN must be one of/);
    } finally {
      data.remove();
    }
  });
});
