// The one logger: pino writing JSON lines, ISO-8601 times and level names
// (`"level":"warn"`, not pino's numbers), so a line reads the same to a
// person, to jq and to a log shipper. Request log lines come from children
// of this logger that carry the request's id (src/http/access-log.ts).
import { type DestinationStream, type Logger, pino } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
