// API keys with roles. Keys are looked up by their SHA-256, so the lookup
// time does not depend on how much of a guessed key is right (the map
// compares digests, which an attacker cannot steer). The set of keys can be
// replaced while serving (SIGHUP): requests already authenticated keep their
// principal, the next one sees the new keys.
import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { bearerTokenLengthMax } from '../constants.ts';
import type { Credentials, QuotaRate, Role } from '../credentials.ts';
import { HttpProblem } from '../errors.ts';

/**
 * What a route needs: nothing, a client key, or an admin key (admins may also
 * act as clients); or, for the internal route instances forward writes with,
 * the cluster key.
 */
export type RouteRole = Role | 'none' | 'cluster';

/** Characters of a principal's scope: a prefix of its key's SHA-256, in hex. */
const scopeHexChars = 16;
/** A principal's scope as text, for validating one a peer forwards. */
export const scopePattern = `^[0-9a-f]{${scopeHexChars}}$`;

const bearerPattern = new RegExp(`^Bearer ([\\x21-\\x7e]{1,${bearerTokenLengthMax}})$`, 'i');

export interface Principal {
  role: Role;
  /** Stable, non-secret name of the key: scopes idempotency keys and quotas per caller. */
  scope: string;
  quota: QuotaRate;
}

function digest(key: string): string {
  // The one-shot hash: a fraction of createHash's cost, paid on every request.
  return hash('sha256', key, 'hex');
}

export class ApiKeys {
  private byDigest = new Map<string, Principal>();

  constructor(credentials: Credentials) {
    this.replace(credentials);
  }

  /** Takes the new set of keys at once; a key present before and after keeps its scope (it is the digest). */
  replace(credentials: Credentials): void {
    const byDigest = new Map<string, Principal>();
    for (const [key, grant] of credentials.keys) {
      const hash = digest(key);
      byDigest.set(hash, { role: grant.role, scope: hash.slice(0, scopeHexChars), quota: grant.quota });
    }
    this.byDigest = byDigest;
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** The caller, or a 401/403 problem. The scheme name is case-insensitive (RFC 9110 §11.1). */
  authenticate(request: FastifyRequest, needed: Exclude<RouteRole, 'cluster'>): Principal | undefined {
    if (needed === 'none') return undefined;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? bearerPattern.exec(header) : null;
    if (match === null)
      throw new HttpProblem(
        'unauthorized',
        'send Authorization: Bearer <api key>',
        {},
        { 'www-authenticate': 'Bearer' },
      );
    const principal = this.byDigest.get(digest(match[1]!));
    if (principal === undefined)
      throw new HttpProblem('unauthorized', 'unknown API key', {}, { 'www-authenticate': 'Bearer' });
    if (needed === 'admin' && principal.role !== 'admin') throw new HttpProblem('forbidden', 'this needs an admin key');
    return principal;
  }
}

/**
 * The keys instances forward writes to each other with (--cluster-key). The
 * SHA-256 of what was sent is compared with each key's in constant time, and
 * every key is tried every time, so the answer's timing tells nothing of how
 * close a guess came or which key matched. An API key is no cluster key.
 */
export class ClusterKeys {
  private readonly digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map((key) => hash('sha256', key, 'buffer'));
  }

  authenticate(request: FastifyRequest): void {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? bearerPattern.exec(header) : null;
    const sent = hash('sha256', match?.[1] ?? '', 'buffer');
    let known = false;
    for (const digest of this.digests) known = timingSafeEqual(digest, sent) || known;
    if (match === null || !known) {
      throw new HttpProblem('unauthorized', 'this route takes the cluster key', {}, { 'www-authenticate': 'Bearer' });
    }
  }
}
