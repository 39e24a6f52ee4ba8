// One table of flags per command. Each row names a flag once; from it come
// the commander option, its parser, its environment twin (`--data-dir` ->
// `HOTSTOCK_DATA_DIR`) and its line in --help. A switch's twin is read
// strictly: true/false/1/0/yes/no in any case, anything else stops the
// command with a message naming the variable, so a wrong value never turns a
// feature on.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { etcdEndpointsMax } from '../constants.ts';
import { exitCodes } from './exit-codes.ts';

export interface Flag {
  /** The flag without its dashes, kebab-case: `data-dir`. */
  name: string;
  help: string;
  /** Placeholder of the value in --help; a flag without one is a switch (off unless given). */
  arg?: string;
  /** Turns the text into the value or throws InvalidArgumentError; `flag` is `--name`, for the message. */
  parse?: (value: string, flag: string) => unknown;
  choices?: readonly string[];
  default?: unknown;
  /** How the default reads in --help when the value itself would not say it well. */
  defaultHelp?: string;
  /** The twin when it is not `HOTSTOCK_` + the name in upper snake case. */
  env?: string;
}

export function twinOf(name: string, prefix = 'HOTSTOCK_'): string {
  return `${prefix}${name.toUpperCase().replaceAll('-', '_')}`;
}

/** How a refusal names a flag checked after parsing: the flag and its environment twin. */
export function flagLabel(name: string): string {
  return `--${name} (${twinOf(name)})`;
}

function optionOf(flag: Flag, twinPrefix: string): Option {
  const option = new Option(`--${flag.name}${flag.arg === undefined ? '' : ` <${flag.arg}>`}`, flag.help).env(
    flag.env ?? twinOf(flag.name, twinPrefix),
  );
  const parse = flag.parse;
  if (parse !== undefined) option.argParser((value: string) => parse(value, `--${flag.name}`));
  if (flag.choices !== undefined) option.choices(flag.choices);
  if (flag.default !== undefined) option.default(flag.default, flag.defaultHelp);
  return option;
}

/** Adds every flag of `flags` to `command`, each with its environment twin. */
export function addFlags(command: Command, flags: readonly Flag[], twinPrefix = 'HOTSTOCK_'): Command {
  for (const flag of flags) command.addOption(optionOf(flag, twinPrefix));
  return command;
}

const switchWords = new Map([
  ['true', true],
  ['1', true],
  ['yes', true],
  ['false', false],
  ['0', false],
  ['no', false],
]);

/** A switch's twin: true/1/yes or false/0/no, in any case; anything else throws, naming the variable. */
export function parseSwitchTwin(variable: string, text: string): boolean {
  const value = switchWords.get(text.trim().toLowerCase());
  if (value === undefined) {
    throw new InvalidArgumentError(
      `${variable} must be one of true, false, 1, 0, yes, no (any case), got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/**
 * Commander turns a switch on when its twin is merely set, whatever the
 * value; this hook reads every switch twin of the command about to run
 * again, strictly. A switch given on the command line wins over its twin.
 */
export function strictSwitchTwins(program: Command): Command {
  return program.hook('preAction', (_program, command) => {
    for (const option of command.options) {
      if (!option.isBoolean() || option.envVar === undefined || option.negate) continue;
      const key = option.attributeName();
      if (command.getOptionValueSource(key) !== 'env') continue;
      try {
        command.setOptionValueWithSource(key, parseSwitchTwin(option.envVar, process.env[option.envVar] ?? ''), 'env');
      } catch (error) {
        command.error(`error: ${(error as Error).message}`, { exitCode: exitCodes.usage });
      }
    }
  });
}

// ---- parsers the commands share ------------------------------------------------

/** An integer from `min` to `max`, written in digits (a leading minus allowed). */
export function integer(min: number, max: number): (value: string, flag: string) => number {
  return (value, flag) => {
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
    }
    return parsed;
  };
}

/** A number above 0 and at most 1. */
export function ratio(value: string, flag: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0 || parsed > 1) {
    throw new InvalidArgumentError(`${flag} must be a number above 0 and at most 1, got "${value}"`);
  }
  return parsed;
}

/** A share from 0 to 1, both included. */
export function share(value: string, flag: string): number {
  const parsed = Number(value);
  if (!/^\s*(0|1|0?\.\d+|1\.0*)\s*$/.test(value) || !Number.isFinite(parsed) || parsed < 0 || parsed > 1) {
    throw new InvalidArgumentError(`${flag} must be a number from 0 to 1 (like 0.05), got "${value}"`);
  }
  return parsed;
}

/** etcd client URLs: http(s)://host:port, comma-separated, none twice. */
export function endpointList(value: string, flag: string): string[] {
  const list = value
    .split(',')
    .map((endpoint) => endpoint.trim())
    .filter((endpoint) => endpoint.length > 0);
  if (list.length === 0 || list.length > etcdEndpointsMax) {
    throw new InvalidArgumentError(`${flag} must list 1 to ${etcdEndpointsMax} URLs, got "${value}"`);
  }
  for (const endpoint of list) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new InvalidArgumentError(`${flag}: "${endpoint}" is not a URL like http://127.0.0.1:2379`);
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.port === '' || url.pathname !== '/') {
      throw new InvalidArgumentError(`${flag}: "${endpoint}" must be http(s)://host:port`);
    }
  }
  if (new Set(list).size !== list.length) throw new InvalidArgumentError(`${flag} lists an endpoint twice`);
  return list;
}
