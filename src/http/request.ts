/**
 * What every handler reads from a request the same way: raw header values by exact name (D12),
 * the body's declared length, the `client_max_body_size` check, and nginx's request variables
 * (`$arg_*`, `$http_*`, `$remote_addr`, …) for templates.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../protocol/http-errors';

/** Every value of the headers with these exact names (case-insensitive, D12), in request order, as raw latin1 bytes. */
export function rawHeaderValues(req: IncomingMessage, ...names: string[]): string[] {
  const wanted = names.map((n) => n.toLowerCase());
  const values: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (wanted.includes(raw[i]!.toLowerCase())) values.push(raw[i + 1]!);
  return values;
}

/** The last value of a header by exact name (later occurrences win, as in the module). */
export function lastRawHeader(req: IncomingMessage, ...names: string[]): string | undefined {
  return rawHeaderValues(req, ...names).pop();
}

/** The body's length as declared: `Content-Length`, or null for a chunked body (known only at its end). */
export function declaredLength(req: IncomingMessage): number | null {
  // The framing was checked before any handler runs (protocol/request-framing.ts): chunked is the only coding.
  if (req.headers['transfer-encoding'] !== undefined) return null;
  return Number(req.headers['content-length'] ?? 0);
}

/** `client_max_body_size` (0 = unlimited) against a length: the one check, for the declared length and while the body streams. */
export function checkBodySize(length: number | null, limit: number): void {
  if (limit > 0 && length !== null && length > limit) {
    throw new HttpError(413, `request body larger than client_max_body_size (${limit} bytes)`);
  }
}

/** nginx's request variables we support; undefined for any other name. */
export function requestVariable(name: string, req: IncomingMessage): string | undefined {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const args = q < 0 ? '' : url.slice(q + 1);
  if (name.startsWith('arg_')) {
    for (const pair of args.split('&')) {
      const eq = pair.indexOf('=');
      if ((eq < 0 ? pair : pair.slice(0, eq)).toLowerCase() === name.slice(4).toLowerCase()) return eq < 0 ? '' : pair.slice(eq + 1);
    }
    return undefined;
  }
  if (name.startsWith('http_')) return lastRawHeader(req, name.slice(5).replace(/_/g, '-'));
  if (name.startsWith('cookie_')) {
    const cookies = lastRawHeader(req, 'cookie') ?? '';
    for (const c of cookies.split(';')) {
      const [k, ...v] = c.trim().split('=');
      if (k === name.slice(7)) return v.join('=');
    }
    return undefined;
  }
  switch (name) {
    case 'remote_addr':
      return req.socket.remoteAddress;
    case 'request_uri':
      return url;
    case 'uri':
      return q < 0 ? url : url.slice(0, q);
    case 'args':
    case 'query_string':
      return args;
    case 'host':
      return (lastRawHeader(req, 'host') ?? '').replace(/:\d+$/, '');
    case 'request_method':
      return req.method;
    case 'content_length':
      return lastRawHeader(req, 'content-length');
    case 'content_type':
      return lastRawHeader(req, 'content-type');
    case 'scheme':
      return 'http';
    case 'server_port':
      return String(req.socket.localPort ?? '');
  }
  return undefined;
}
