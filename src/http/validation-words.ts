// Ajv's schema errors turned into plain words for a client: which field (as
// a JSON pointer, RFC 6901), what was wrong, and what is allowed (the field's
// schema description, never a regular expression).
import type { ErrorObject } from 'ajv';

export interface ValidationIssue {
  location: string;
  /** The field within its location: `/items/3/qty`, `/idempotency-key`. */
  pointer: string;
  message: string;
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

function segments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** How the field reads in a sentence: `qty`, `items[3].qty`, `?limit`, `the Idempotency-Key header`. */
function fieldName(location: string, pointer: string): string {
  const parts = segments(pointer);
  if (location === 'headers') return `the ${parts[0] ?? ''} header`;
  if (parts.length === 0) return location === 'body' ? 'the body' : `the ${location}`;
  const path = parts.map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
  if (location === 'querystring') return `?${path}`;
  if (location === 'params') return `the path's ${path}`;
  return path;
}

function shown(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const text = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `${JSON.stringify(text)} (${value.length} characters)`;
  }
  return String(value);
}

const typeWords: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

function allowed(issue: ErrorObject): string | undefined {
  return (issue.parentSchema as { description?: string } | undefined)?.description;
}

function propertyNames(issue: ErrorObject): string[] {
  return Object.keys((issue.parentSchema as { properties?: object } | undefined)?.properties ?? {});
}

/**
 * The sentence for one Ajv error; `field` is how the field reads (for
 * `required` the missing field, for `additionalProperties` the object).
 */
function sentence(issue: ErrorObject, field: string): string {
  const params = issue.params as Record<string, unknown>;
  const rule = allowed(issue);
  switch (issue.keyword) {
    case 'required': {
      const name = String(params.missingProperty);
      const description = (issue.parentSchema as { properties?: Record<string, { description?: string }> })
        ?.properties?.[name]?.description;
      return `${field} is required${description ? `: ${description}` : ''}`;
    }
    case 'additionalProperties':
      return `${field} has an unknown field ${JSON.stringify(params.additionalProperty)}; the fields are ${propertyNames(issue).join(', ')}`;
    case 'type': {
      const types = [params.type].flat().map((type) => typeWords[String(type)] ?? String(type));
      return `${field} must be ${types.join(' or ')}${rule ? ` (${rule})` : ''}, got ${shown(issue.data)}`;
    }
    case 'enum':
      return `${field} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${shown(issue.data)}`;
    default:
      // Bounds, lengths, patterns, `not`: the description says what is allowed.
      if (rule !== undefined) return `${field} must be ${rule}, got ${shown(issue.data)}`;
      return `${field} ${issue.message ?? 'is not allowed'}, got ${shown(issue.data)}`;
  }
}

export function validationIssue(location: string, issue: ErrorObject): ValidationIssue {
  const params = issue.params as Record<string, unknown>;
  const child = issue.keyword === 'required' ? params.missingProperty : params.additionalProperty;
  const pointer =
    (issue.keyword === 'required' || issue.keyword === 'additionalProperties') && typeof child === 'string'
      ? `${issue.instancePath}/${escapePointer(child)}`
      : issue.instancePath;
  const field = fieldName(location, issue.keyword === 'additionalProperties' ? issue.instancePath : pointer);
  return { location, pointer, message: sentence(issue, field) };
}
