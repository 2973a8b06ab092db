/**
 * Request framing rules checked on a parsed request head, before any handler runs (D24).
 *
 * Node's strict parser already refuses malformed heads and bodies (a bad `Content-Length`,
 * `Content-Length` with `Transfer-Encoding: chunked`, `chunked` not last, obs-folds, control
 * characters, bad chunk lines). What it lets through and the gateway still refuses, as nginx does:
 *
 * - `Transfer-Encoding` given twice, or together with `Content-Length` in any form → 400 (RFC 9112
 *   §6.1: such a message is faulty framing, the connection must close);
 * - `Transfer-Encoding` not ending with `chunked` → 400 (RFC 9112 §6.3; Node refuses it too, but
 *   only after it emitted the request);
 * - a transfer coding besides `chunked` (`gzip, chunked`) → 501 (RFC 9112 §6.1), since the
 *   gateway would otherwise store coded bytes as the file;
 * - `Host` given twice → 400 (RFC 9112 §3.2);
 * - HTTP/2 or later in the request-line → 505.
 */

import { quoteValue } from './quote';

export interface FramingProblem {
  status: 400 | 501 | 505;
  reason: string;
}

/** What `requestFramingProblem` reads of a parsed request. */
export interface RequestHead {
  httpVersionMajor: number;
  /** name, value, name, value … as received (node:http's `rawHeaders`). */
  rawHeaders: readonly string[];
}

function values(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === name) out.push(rawHeaders[i + 1]);
  return out;
}

export function requestFramingProblem(request: RequestHead): FramingProblem | null {
  if (request.httpVersionMajor >= 2) {
    return { status: 505, reason: `HTTP/${request.httpVersionMajor} is not supported here: send HTTP/1.1` };
  }
  const transferEncodings = values(request.rawHeaders, 'transfer-encoding');
  if (transferEncodings.length > 1) return { status: 400, reason: 'Transfer-Encoding given more than once' };
  if (transferEncodings.length === 1) {
    if (values(request.rawHeaders, 'content-length').length > 0) return { status: 400, reason: 'both Content-Length and Transfer-Encoding given' };
    const coding = transferEncodings[0].trim();
    const codings = coding.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
    // RFC 9112 §6.3: without chunked as the final coding the body length cannot be known.
    if (codings[codings.length - 1] !== 'chunked') return { status: 400, reason: `Transfer-Encoding ${quoteValue(coding)} does not end with chunked` };
    if (codings.length > 1) return { status: 501, reason: `Transfer-Encoding ${quoteValue(coding)} is not supported: only chunked` };
  }
  if (values(request.rawHeaders, 'host').length > 1) return { status: 400, reason: 'Host given more than once' };
  return null;
}

/**
 * A request after which the connection must close although the answer is fine: an upgrade
 * request (node:http stops reading HTTP after it, so a next request would never be answered)
 * and an HTTP/1.0 request with `Transfer-Encoding` (RFC 9112 §6.1: close after processing).
 */
export function closesConnection(request: RequestHead & { httpVersionMinor: number }): boolean {
  const connection = values(request.rawHeaders, 'connection').join(',').toLowerCase();
  const upgrade = values(request.rawHeaders, 'upgrade').length > 0 && /(^|,)[ \t]*upgrade[ \t]*(,|$)/.test(connection);
  const http10Chunked = request.httpVersionMajor === 1 && request.httpVersionMinor === 0 && values(request.rawHeaders, 'transfer-encoding').length > 0;
  return upgrade || http10Chunked;
}
