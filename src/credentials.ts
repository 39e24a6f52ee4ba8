// API keys and their quotas, from the flags and the --keys-file. Read at start
// and again on SIGHUP, so keys rotate without a restart. Messages name the
// file and the entry, never a key: keys must not reach a log.
import { readFileSync, statSync } from 'node:fs';
import {
  apiKeyLengthMin,
  apiKeysMax,
  bearerTokenLengthMax,
  keysFileBytesMax,
  quotaBurstMax,
  quotaRpsMax,
} from './constants.ts';

export type Role = 'admin' | 'client';

/** A token bucket: `rps` requests a second sustained, `burst` at once; rps 0 means no quota. */
export interface QuotaRate {
  rps: number;
  burst: number;
}

export interface KeyGrant {
  role: Role;
  quota: QuotaRate;
}

export interface Credentials {
  /** Every API key and what it may do. */
  keys: ReadonlyMap<string, KeyGrant>;
}

/** Where the keys come from: flags (fixed for the process) and the keys file (re-read on SIGHUP). */
export interface KeySources {
  adminKeys: readonly string[];
  clientKeys: readonly string[];
  keysFile: string | undefined;
  /** Use the demo keys when no key is configured. */
  demo: boolean;
  /** The quota of a key that names none of its own. */
  quota: QuotaRate;
}

/** Keys the demo start uses when none are configured; printed at start, never for production. */
export const demoKeys = { admin: 'demo-admin-key', client: 'demo-client-key' } as const;

export const noQuota: QuotaRate = Object.freeze({ rps: 0, burst: 0 });

/** Refused keys or key files; the message names the flag or file and never the key. */
export class CredentialsError extends Error {}

export function isValidKey(key: string): boolean {
  return key.length >= apiKeyLengthMin && key.length <= bearerTokenLengthMax && /^[\x21-\x7e]+$/.test(key);
}

export function keyRule(): string {
  return `keys must be ${apiKeyLengthMin} to ${bearerTokenLengthMax} printable ASCII characters, without spaces`;
}

/** `--quota-burst` 0 with a rate means one second's worth of requests. */
export function quotaOf(rps: number, burst: number): QuotaRate {
  if (rps === 0 && burst !== 0) throw new CredentialsError('--quota-burst needs --quota-rps');
  return { rps, burst: burst === 0 ? rps : Math.max(burst, 1) };
}

interface FileEntry {
  key: string;
  quota: QuotaRate | undefined;
}

function whole(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max;
}

function fileEntry(entry: unknown, where: string, fallback: QuotaRate): FileEntry {
  if (typeof entry === 'string') {
    if (!isValidKey(entry)) throw new CredentialsError(`${where}: ${keyRule()}`);
    return { key: entry, quota: undefined };
  }
  const object = entry as { key?: unknown; quotaRps?: unknown; quotaBurst?: unknown } | null;
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    throw new CredentialsError(`${where} must be a key or {"key", "quotaRps", "quotaBurst"}`);
  }
  const unknown = Object.keys(object).filter((name) => !['key', 'quotaRps', 'quotaBurst'].includes(name));
  if (unknown.length > 0) throw new CredentialsError(`${where} has unknown field(s) ${unknown.join(', ')}`);
  if (typeof object.key !== 'string' || !isValidKey(object.key)) throw new CredentialsError(`${where}: ${keyRule()}`);
  const rps = object.quotaRps ?? fallback.rps;
  const burst = object.quotaBurst ?? (object.quotaRps === undefined ? fallback.burst : 0);
  if (!whole(rps, quotaRpsMax))
    throw new CredentialsError(`${where}.quotaRps must be an integer from 0 to ${quotaRpsMax}`);
  if (!whole(burst, quotaBurstMax)) {
    throw new CredentialsError(`${where}.quotaBurst must be an integer from 0 to ${quotaBurstMax}`);
  }
  if (rps === 0 && burst !== 0) throw new CredentialsError(`${where}.quotaBurst needs a quotaRps above 0`);
  return { key: object.key, quota: { rps, burst: burst === 0 ? rps : burst } };
}

/** The JSON text of the file; JSON.parse's own message is not used, since it quotes the text (keys). */
function readKeysFile(path: string): unknown {
  let text: string;
  try {
    if (statSync(path).size > keysFileBytesMax) throw new Error(`larger than ${keysFileBytesMax} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CredentialsError(`--keys-file ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CredentialsError(`--keys-file ${path}: not valid JSON`);
  }
}

function keysFromFile(path: string, fallback: QuotaRate): { admin: FileEntry[]; client: FileEntry[] } {
  const parsed = readKeysFile(path) as Record<string, unknown> | null;
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CredentialsError(`--keys-file ${path}: must be an object {"admin": [...], "client": [...]}`);
  }
  const unknown = Object.keys(parsed).filter((name) => name !== 'admin' && name !== 'client');
  if (unknown.length > 0) throw new CredentialsError(`--keys-file ${path}: unknown field(s) ${unknown.join(', ')}`);
  const list = (role: Role) => {
    const value = parsed[role] ?? [];
    if (!Array.isArray(value)) throw new CredentialsError(`--keys-file ${path}: "${role}" must be an array`);
    return value.map((entry, index) => fileEntry(entry, `--keys-file ${path}: ${role}[${index}]`, fallback));
  };
  return { admin: list('admin'), client: list('client') };
}

/** Every key and its grant; throws CredentialsError on any bad entry, or when there is no key at all. */
export function loadCredentials(sources: KeySources): Credentials {
  const file =
    sources.keysFile === undefined ? { admin: [], client: [] } : keysFromFile(sources.keysFile, sources.quota);
  const admin: FileEntry[] = [...sources.adminKeys.map((key) => ({ key, quota: undefined })), ...file.admin];
  const client: FileEntry[] = [...sources.clientKeys.map((key) => ({ key, quota: undefined })), ...file.client];
  if (admin.length === 0 && client.length === 0 && sources.demo) {
    admin.push({ key: demoKeys.admin, quota: undefined });
    client.push({ key: demoKeys.client, quota: undefined });
  }
  if (admin.length === 0 && client.length === 0) {
    throw new CredentialsError(
      'no API keys: set --admin-keys / --client-keys or --keys-file (or --demo for demo keys)',
    );
  }
  const keys = new Map<string, KeyGrant>();
  for (const { key, quota } of client) keys.set(key, { role: 'client', quota: quota ?? sources.quota });
  // A key listed under both roles is an admin key (admins may act as clients).
  for (const { key, quota } of admin) keys.set(key, { role: 'admin', quota: quota ?? sources.quota });
  if (keys.size > apiKeysMax) throw new CredentialsError(`at most ${apiKeysMax} API keys`);
  return { keys };
}
