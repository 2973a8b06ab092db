import * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { LocationConfig } from '../config/types';
import { HttpError } from '../protocol/http-errors';
import { NOT_PASSED_UPSTREAM, upstreamRequest } from '../http/upstream';

/** Backend response headers not relayed: hop-by-hop, and those nginx's proxy hides or sets itself. */
const NOT_RELAYED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection', 'date', 'server', 'x-pad']);

/**
 * Node's http client takes a `Content-Disposition` value written after a `Content-Length` for
 * UTF-8 text and sends it as Latin-1 (nodejs/node#46528): the client's bytes would change (`Ã©`
 * sent as `é`) or be refused (a byte that is not UTF-8: a 500 at the hand-off). The module forwards
 * them as received, so where Node does this (checked once, on Node's own header writer) the value
 * is handed to Node encoded the other way, and reaches the backend byte for byte.
 */
const NODE_DECODES_DISPOSITION: boolean = (() => {
  try {
    const probe = new http.OutgoingMessage() as http.OutgoingMessage & { _storeHeader(firstLine: string, headers: string[]): void; _header: string };
    probe._storeHeader('POST / HTTP/1.1\r\n', ['Content-Length', '1', 'Content-Disposition', '\u00c3\u00a9']);
    return !probe._header.includes('Content-Disposition: \u00c3\u00a9\r\n');
  } catch {
    return false;
  }
})();

/** A client header value (a byte string) as node:http must be given it to send those bytes. */
function forwardedValue(lowerName: string, value: string): string {
  return NODE_DECODES_DISPOSITION && lowerName === 'content-disposition' ? Buffer.from(value, 'utf8').toString('latin1') : value;
}

/** Backend answers up to this size are kept for replay (D7); larger ones are streamed through. */
export const REPLAYABLE_BODY_LIMIT = 1024 * 1024;

export interface BackendAnswer {
  status: number;
  statusMessage: string;
  headers: Array<[string, string]>;
  /** The whole body, when it fits REPLAYABLE_BODY_LIMIT. */
  body: Buffer | null;
  /** Otherwise the body as a stream (already-read head included). */
  stream: Readable | null;
}

/** The backend could not be reached or did not answer in time (D7: the upload is kept). */
export class BackendUnreachable extends Error {}

/** The request-target the backend sees (§5.1 and the upload_pass rules). */
export function backendTarget(location: LocationConfig, clientTarget: string): string {
  const path = location.uploadPass.path;
  if (path === null) return clientTarget;
  const q = clientTarget.indexOf('?');
  return location.passArgs && q >= 0 && q < clientTarget.length - 1 ? path + clientTarget.slice(q) : path;
}

/**
 * Hands the generated form to the backend as the module does (§5.2): POST, `Host` of the
 * upstream, `Connection: close`, exact `Content-Length`, then the client's headers in their
 * original order and bytes, with `Content-Type` replaced in place when `contentType` is given
 * (added at the end when the client sent none).
 */
export async function callBackend(location: LocationConfig, req: IncomingMessage, body: Buffer, contentType: string | null): Promise<BackendAnswer> {
  const { uploadPass } = location;
  const headers: string[] = ['Host', uploadPass.hostHeader, 'Connection', 'close', 'Content-Length', String(body.length)];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (NOT_PASSED_UPSTREAM.has(lower)) continue;
    headers.push(raw[i], lower === 'content-type' && contentType !== null ? contentType : forwardedValue(lower, raw[i + 1]));
  }
  // A request without a body of its own (a tus concatenation, a draft append of no bytes) completes an upload too.
  if (contentType !== null && !raw.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'content-type')) headers.push('Content-Type', contentType);
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = upstreamRequest(
      uploadPass.origin,
      { method: 'POST', path: backendTarget(location, req.url ?? '/'), headers, connectTimeoutMs: location.backendConnectTimeoutMs, readTimeoutMs: location.backendReadTimeoutMs },
      (reason) => new BackendUnreachable(reason),
    );
    request.on('response', resolve);
    request.on('error', (err) => reject(err instanceof BackendUnreachable ? err : new BackendUnreachable(`${uploadPass.origin}: ${err.message}`)));
    request.end(body);
  });
  const relayed: Array<[string, string]> = [];
  for (let i = 0; i < response.rawHeaders.length; i += 2) {
    const name = response.rawHeaders[i];
    if (!NOT_RELAYED.has(name.toLowerCase()) && !name.toLowerCase().startsWith('x-accel-')) relayed.push([name, response.rawHeaders[i + 1]]);
  }
  const answer = await readBody(response);
  return { status: response.statusCode ?? 502, statusMessage: response.statusMessage ?? '', headers: relayed, ...answer };
}

async function readBody(response: IncomingMessage): Promise<{ body: Buffer | null; stream: Readable | null }> {
  // Iterate by hand: leaving a for-await loop early would destroy the response we still relay.
  const iterator = response[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      chunks.push(next.value);
      size += next.value.length;
      if (size > REPLAYABLE_BODY_LIMIT) {
        const head = Buffer.concat(chunks, size);
        return {
          body: null,
          stream: Readable.from(
            (async function* () {
              try {
                yield head;
                for (;;) {
                  const more = await iterator.next();
                  if (more.done) return;
                  yield more.value;
                }
              } finally {
                // Also when the client went away mid-answer (send_timeout, disconnect): the
                // backend's connection must not stay open behind it.
                response.destroy();
              }
            })(),
          ),
        };
      }
    }
  } catch (err) {
    throw new HttpError(502, `the backend's answer broke off: ${(err as Error).message}`);
  }
  return { body: Buffer.concat(chunks, size), stream: null };
}
