// Listing cursors as clients see them: the engine's position (an internal
// string: today a store key, which names user ids) sealed with AES-256-GCM.
// The query's normalized filters are the associated data, so a cursor reveals
// nothing, and one that was altered or moved to another query fails to open:
// 400 invalid_cursor. The page size is not part of the binding; a client may
// change it between pages.
//
// The key: HKDF-SHA256 over --cursor-secret when set (share it between the
// instances of an etcd deployment); otherwise over the API keys in force, so
// instances with the same keys agree and a restart keeps cursors working. A
// key rotation (or SIGHUP that changes the keys) then ends open listings:
// their next page is invalid_cursor, and the client starts again.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Rejected } from '../engine/operations.ts';
import type { Page } from '../engine/queries.ts';
import { HttpProblem } from '../errors.ts';
import { orProblem } from './request-context.ts';

const formatVersion = 1;
const ivBytes = 12;
const tagBytes = 16;
const keyBytes = 32;
const hkdfSalt = 'hotstock';
const hkdfInfo = 'listing cursor v1';

function deriveKey(material: string): Buffer {
  return Buffer.from(hkdfSync('sha256', material, hkdfSalt, hkdfInfo, keyBytes));
}

/** Key material from the API keys: order-independent, so every instance with the same keys derives the same. */
export function cursorMaterialOfKeys(keys: Iterable<string>): string {
  return [...keys].sort().join('\n');
}

/** What a cursor is bound to: the listing and its filters, `undefined` and absent alike. */
export function cursorBinding(listing: string, filters: readonly (string | undefined)[]): string {
  return JSON.stringify([listing, ...filters.map((filter) => filter ?? null)]);
}

function invalid(): HttpProblem {
  return new HttpProblem(
    'invalid_cursor',
    'this cursor was not issued for this query (or was altered); start the listing again without a cursor',
  );
}

export class CursorSealer {
  private key: Buffer;

  constructor(material: string) {
    this.key = deriveKey(material);
  }

  /** Takes new key material (SIGHUP with changed API keys); cursors sealed before no longer open. */
  rekey(material: string): void {
    this.key = deriveKey(material);
  }

  seal(position: string, binding: string): string {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(binding, 'utf8'));
    const sealed = Buffer.concat([cipher.update(position, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.of(formatVersion), iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /** The engine's position, or a thrown 400 invalid_cursor. */
  unseal(cursor: string, binding: string): string {
    const bytes = Buffer.from(cursor, 'base64url');
    if (bytes.length < 1 + ivBytes + tagBytes || bytes[0] !== formatVersion || bytes.toString('base64url') !== cursor) {
      throw invalid();
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(1, 1 + ivBytes));
    decipher.setAAD(Buffer.from(binding, 'utf8'));
    decipher.setAuthTag(bytes.subarray(1 + ivBytes, 1 + ivBytes + tagBytes));
    try {
      return Buffer.concat([decipher.update(bytes.subarray(1 + ivBytes + tagBytes)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw invalid();
    }
  }
}

/**
 * One page of a listing as the API sends it: the engine reads from the
 * position the client's cursor seals, the items are rendered, and the next
 * position is sealed again, bound to the same listing and filters.
 */
export async function listingPage<R, V>(
  cursors: CursorSealer,
  binding: string,
  cursor: string | undefined,
  read: (after: string | undefined) => Promise<Page<R> | Rejected>,
  view: (item: R) => V,
): Promise<{ items: V[]; nextCursor: string | null }> {
  const page = orProblem(await read(cursor === undefined ? undefined : cursors.unseal(cursor, binding)));
  return {
    items: page.items.map(view),
    nextCursor: page.next === null ? null : cursors.seal(page.next, binding),
  };
}
