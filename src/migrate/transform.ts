// `--transform FILE`: a module whose default export maps one source key/value
// to a hotstock record (`ImportRecord` in importer.ts) or to null to skip it.
// The module is identified by the SHA-256 of its file, so a resume refuses a
// changed transform.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RecordMapper } from './importer.ts';

export interface LoadedTransform {
  mapper: RecordMapper;
  /** `transform:<sha256 of the file>`, recorded in the checkpoint. */
  mapping: string;
}

export async function loadTransform(file: string): Promise<LoadedTransform> {
  const path = resolve(file);
  const digest = createHash('sha256').update(readFileSync(path)).digest('hex');
  const module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  if (typeof module.default !== 'function') {
    throw new Error(`--transform ${file}: the module must export a function as its default export`);
  }
  return { mapper: module.default as RecordMapper, mapping: `transform:${digest}` };
}
