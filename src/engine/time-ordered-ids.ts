// Ids that sort by creation time and are unique across instances without
// coordination: milliseconds, a per-process sequence, and a random instance
// tag drawn once at start. Adjustment audit entries use them, and so do
// reservations made without an idempotency key (internal callers).
import { randomBytes } from 'node:crypto';

const timeDigits = 9; // base-36 milliseconds fit 9 digits until the year 5188
const sequenceDigits = 4;
const sequenceModulus = 36 ** sequenceDigits;

export function timeOrderedIds(): () => string {
  const instanceTag = randomBytes(4).readUInt32BE().toString(36).padStart(7, '0');
  let sequence = 0;
  return () => {
    sequence = (sequence + 1) % sequenceModulus;
    const time = Date.now().toString(36).padStart(timeDigits, '0');
    return `${time}${sequence.toString(36).padStart(sequenceDigits, '0')}${instanceTag}`;
  };
}
