// Raw HTTP/1.1 over a TCP socket, for requests fetch refuses to send:
// control characters in header values or the request target, invalid UTF-8
// bodies, lying or missing Content-Length/Content-Type, garbage request
// lines. One request per connection; the reply is read until the server
// closes the socket (send `Connection: close`).
import { connect } from 'node:net';
import { assertConforms } from './conformance.ts';

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** The body parsed as JSON, or its text when it is not JSON. */
  json: unknown;
}

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export function parseRawResponse(data: Buffer): RawResponse {
  const headEnd = data.indexOf('\r\n\r\n');
  if (headEnd === -1) throw new Error(`no complete HTTP response head in ${JSON.stringify(data.toString('latin1'))}`);
  const [statusLine = '', ...headerLines] = data.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (statusMatch === null) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = data.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) body = decodeChunked(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  const text = body.toString('utf8');
  let json: unknown = text;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: hand back the text.
  }
  return { status: Number(statusMatch[1]), headers, body, json };
}

/** Method and request target of the request line at the start of `first`, as far as it reads as one. */
function requestLineOf(first: string | Buffer | undefined): { method: string; target: string } {
  const line = (first === undefined ? '' : first.toString('latin1')).split('\r\n', 1)[0] ?? '';
  const [method = '', target = ''] = line.split(' ');
  return { method, target };
}

/**
 * Sends `pieces` (written in order, with backpressure) to the server at
 * `baseUrl` and resolves with its parsed reply once the connection closes,
 * checked against the server's OpenAPI document. The server may answer and
 * close before every piece is written (413): write errors after that are
 * expected and ignored.
 */
export async function rawRequest(
  baseUrl: string,
  pieces: string | Buffer | Iterable<string | Buffer>,
  timeoutMs = 10_000,
): Promise<RawResponse> {
  const list = typeof pieces === 'string' || Buffer.isBuffer(pieces) ? [pieces] : [...pieces];
  const reply = await exchange(baseUrl, list, timeoutMs);
  await assertConforms(baseUrl, {
    ...requestLineOf(list[0]),
    status: reply.status,
    header: (name) => reply.headers[name],
    text: reply.body.toString('utf8'),
  });
  return reply;
}

function exchange(baseUrl: string, list: readonly (string | Buffer)[], timeoutMs: number): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise<RawResponse>((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const received: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      socket.destroy();
      settle(new Error(`no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    function settle(error?: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const data = Buffer.concat(received);
      if (data.length > 0) {
        try {
          resolve(parseRawResponse(data));
        } catch (parseError) {
          reject(parseError);
        }
      } else reject(error ?? new Error('connection closed without a reply'));
    }
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('close', () => settle());
    socket.on('error', (error) => {
      // EPIPE / ECONNRESET once the server has answered and closed are fine.
      if (received.length === 0) settle(error);
    });
    const iterator = list[Symbol.iterator]();
    const pump = (): void => {
      for (;;) {
        if (socket.destroyed || socket.writableEnded) return;
        const next = iterator.next();
        if (next.done) return;
        if (!socket.write(next.value)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.once('connect', pump);
  });
}
