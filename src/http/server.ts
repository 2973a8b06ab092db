import * as http from 'node:http';
import type { Socket } from 'node:net';

/** Set on a socket once the HTTP layer itself answered it (parser error); the app must then stay silent. */
export const ANSWERED_BY_HTTP_LAYER = Symbol('answeredByHttpLayer');

const PARSER_ERRORS: Record<string, [number, string]> = {
  HPE_INVALID_EOF_STATE: [400, 'request body incomplete: the connection closed before the whole body arrived'],
  HPE_HEADER_OVERFLOW: [431, 'request header fields too large'],
  HPE_UNEXPECTED_CONTENT_LENGTH: [400, 'conflicting Content-Length / Transfer-Encoding headers'],
  HPE_INVALID_CONTENT_LENGTH: [400, 'invalid Content-Length'],
  HPE_INVALID_TRANSFER_ENCODING: [400, 'invalid Transfer-Encoding'],
  HPE_INVALID_CHUNK_SIZE: [400, 'invalid chunked body'],
  HPE_INVALID_METHOD: [400, 'invalid request method'],
  HPE_INVALID_VERSION: [400, 'invalid HTTP version'],
};

/**
 * node:http server tuned for uploads:
 * - `insecureHTTPParser` when `lenient` (nginx accepts bare-LF request heads; conflicting
 *   Content-Length headers are still rejected by the parser);
 * - `checkContinue` routed to the app, which sends `100 Continue` only once the upload headers
 *   passed validation, as the module does;
 * - parser errors answered with a definite one-line 400 (D2), never a hang, and trailing bytes
 *   after a `Connection: close` request ignored (D17).
 */
export function createHttpServer(handler: http.RequestListener, options: { lenient: boolean }): http.Server {
  const serial = oneRequestAtATime(handler);
  const server = http.createServer({ insecureHTTPParser: options.lenient, requestTimeout: 0 }, serial);
  // Outlive the keep-alive of a front proxy's upstream connections (nginx: 60s), so a proxy never
  // reuses a connection the gateway is just closing (that POST would get a 502).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('checkContinue', serial);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket));
  return server;
}

/**
 * node:http emits pipelined requests at once; hand them to the app one after the other per
 * connection, as nginx does (RFC 9112 §9.3.2 allows parallel processing for safe methods only).
 */
function oneRequestAtATime(handler: http.RequestListener): http.RequestListener {
  const tails = new WeakMap<Socket, Promise<void>>();
  return (req, res) => {
    const run = (): Promise<void> =>
      new Promise<void>((resolve) => {
        res.once('close', () => resolve());
        handler(req, res);
      });
    const previous = tails.get(req.socket);
    tails.set(req.socket, previous ? previous.then(run) : run());
  };
}

function answerClientError(err: NodeJS.ErrnoException, socket: Socket & { [ANSWERED_BY_HTTP_LAYER]?: boolean; _httpMessage?: http.ServerResponse }): void {
  // Bytes after a complete Connection: close request: HTTP framing already ended that request.
  if (err.code === 'HPE_CLOSED_CONNECTION') return;
  const inProgress = socket._httpMessage as (http.ServerResponse & { req?: http.IncomingMessage }) | undefined;
  // The request being answered is complete: the bad bytes are a next (pipelined) request.
  // Finish the current answer, then close (D17: HTTP framing respected).
  if (inProgress && inProgress.req?.complete && !inProgress.writableEnded) {
    inProgress.shouldKeepAlive = false;
    return;
  }
  if (!socket.writable || (inProgress && inProgress.headersSent) || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, reason] = PARSER_ERRORS[err.code ?? ''] ?? [400, 'malformed HTTP request'];
  const body = `${reason}\n`;
  socket[ANSWERED_BY_HTTP_LAYER] = true;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
