/**
 * Requests the gateway makes to an upstream (the `upload_pass` backend, an `auth_request`
 * service) as nginx's proxy makes them: the headers given in their order and bytes (no Host of
 * Node's, no agent), and nginx's two timeouts: connecting, then between two reads.
 */
import * as http from 'node:http';
import * as https from 'node:https';

/** A client's headers never passed upstream: hop-by-hop, the body's framing (the upstream gets its own), and Host (the upstream's). */
export const NOT_PASSED_UPSTREAM: ReadonlySet<string> = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'transfer-encoding', 'content-length', 'expect']);

export interface UpstreamRequest {
  method: string;
  path: string;
  /** Raw name/value pairs, flat, in order. */
  headers: string[];
  connectTimeoutMs: number;
  readTimeoutMs: number;
}

/** Starts a request to `origin` (`http://host:port`); a timeout destroys it with `timedOut(reason)`. */
export function upstreamRequest(origin: string, options: UpstreamRequest, timedOut: (reason: string) => Error): http.ClientRequest {
  const url = new URL(origin);
  const secure = url.protocol === 'https:';
  const request = (secure ? https : http).request({
    protocol: url.protocol,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (secure ? 443 : 80),
    method: options.method,
    path: options.path,
    headers: options.headers as unknown as http.OutgoingHttpHeaders,
    setHost: false,
    agent: false,
  });
  const connectTimer = setTimeout(() => request.destroy(timedOut(`connecting to ${origin} timed out`)), options.connectTimeoutMs);
  request.on('socket', (socket) => {
    socket.once('connect', () => clearTimeout(connectTimer));
    socket.setTimeout(options.readTimeoutMs, () => request.destroy(timedOut(`${origin} did not answer in time`)));
  });
  const settled = () => clearTimeout(connectTimer);
  request.once('response', settled);
  request.once('error', settled);
  return request;
}
