// Cursors: the engine pages by a position (the last key a page covered); the
// client gets it as an opaque token and hands it back unchanged.
import { HttpProblem } from '../errors.ts';

export function encodeCursor(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const position = Buffer.from(cursor, 'base64url').toString('utf8');
  if (position.length === 0) throw new HttpProblem('invalid_cursor', 'this cursor is not one this service issued');
  return position;
}
