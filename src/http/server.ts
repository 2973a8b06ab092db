import * as http from 'node:http';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import { BareLfHeadNormalizer } from '../protocol/bare-lf-heads';
import { STATUS_TEXT } from '../protocol/http-errors';
import { closesConnection, requestFramingProblem } from '../protocol/request-framing';
import { checkingInterval, SendTimeouts } from './send-timeout';

export { setSendTimeout } from './send-timeout';

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
  HPE_INVALID_HEADER_TOKEN: [400, 'invalid header line'],
  HPE_PAUSED_H2_UPGRADE: [505, 'HTTP/2 is not supported here: send HTTP/1.1'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request head did not arrive within client_header_timeout'],
};

export interface HttpServerOptions {
  /** `client_header_timeout`: a request head must be complete this long after its first byte (or the connection's start). */
  clientHeaderTimeoutMs: number;
  /** `send_timeout` of answers outside upload locations (locations set their own with `setSendTimeout`). */
  sendTimeoutMs: number;
  /** The shortest `send_timeout` of any location (how often stalled answers are looked for). */
  shortestSendTimeoutMs?: number;
  /** Accept bare-LF request heads as nginx does (default true). */
  bareLfHeads?: boolean;
  /** Told of every request before anything is checked (the request log and metrics see refused ones too). */
  onRequest?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  /** Told of what the parser refused before there was a request (malformed framing): the answer's status and reason. */
  onRefused?: (socket: Socket, status: number, reason: string) => void;
}

const SEND_TIMEOUTS = new WeakMap<http.Server, SendTimeouts>();

/** Applies new timeouts to a running server (a configuration reload); connections stay. */
export function updateHttpServer(server: http.Server, options: Pick<HttpServerOptions, 'clientHeaderTimeoutMs' | 'sendTimeoutMs' | 'shortestSendTimeoutMs'>): void {
  server.headersTimeout = options.clientHeaderTimeoutMs;
  SEND_TIMEOUTS.get(server)?.configure(options.sendTimeoutMs, options.shortestSendTimeoutMs ?? options.sendTimeoutMs);
}

type Response = http.ServerResponse & { req?: http.IncomingMessage };
type ServerSocket = Socket & { [ANSWERED_BY_HTTP_LAYER]?: boolean; _httpMessage?: Response | null; parser?: unknown };

/**
 * node:http server tuned for uploads:
 * - Node's parser strict (RFC 9112 framing: no request smuggling), with bare-LF request heads
 *   still accepted as nginx does (`BareLfHeadNormalizer`), and the framing rules Node lets
 *   through checked before the app runs (`requestFramingProblem`, D24);
 * - `checkContinue` routed to the app, which sends `100 Continue` only once the upload headers
 *   passed validation, as the module does;
 * - parser errors answered with a definite one-line status (D2), never a hang, and trailing bytes
 *   after a `Connection: close` request ignored (D17); no request after one whose answer closes
 *   the connection is ever run (RFC 9112 §9.6);
 * - `client_header_timeout` (408) and `send_timeout` (the connection closed); `CONNECT` → 405.
 */
export function createHttpServer(handler: http.RequestListener, options: HttpServerOptions): http.Server {
  const sendTimeouts = new SendTimeouts(options.sendTimeoutMs, options.shortestSendTimeoutMs ?? options.sendTimeoutMs);
  // The last request node:http emitted on each connection (a parse error follows it).
  const lastResponses = new WeakMap<Socket, Response>();
  const serial = oneRequestAtATime(handler, sendTimeouts, lastResponses, options.onRequest);
  const server = http.createServer({
    insecureHTTPParser: false,
    requestTimeout: 0,
    headersTimeout: options.clientHeaderTimeoutMs,
    // How often node:http looks for heads past their timeout (its default is every 30 s).
    connectionsCheckingInterval: checkingInterval(options.clientHeaderTimeoutMs),
  }, serial);
  SEND_TIMEOUTS.set(server, sendTimeouts);
  // Outlive the keep-alive of a front proxy's upstream connections (nginx: 60s), so a proxy never
  // reuses a connection the gateway is just closing (that POST would get a 502).
  server.keepAliveTimeout = 65_000;
  server.on('checkContinue', serial);
  // Runs after node:http's own connection listener (registered when the server was created).
  server.on('connection', (socket: Socket) => {
    if (options.bareLfHeads ?? true) normalizeBareLfHeads(socket as ServerSocket);
    sendTimeouts.watch(socket);
  });
  server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    socket.on('error', () => undefined);
    endWith(socket, plainAnswer(405, 'method CONNECT is not supported: this is an upload gateway, not a proxy'));
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) => answerClientError(err, socket as ServerSocket, lastResponses, options.onRefused));
  return server;
}

/** Ends a connection after `answer`; a client that does not close its side is cut after 5 s. */
function endWith(socket: Socket, answer: string): void {
  socket.end(answer);
  const linger = setTimeout(() => socket.destroy(), 5000);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

/**
 * Feeds the connection's bytes to node:http's parser through a `BareLfHeadNormalizer`: node's own
 * `data` listener (its parser feed, added when the connection arrived) is replaced by one that
 * normalizes first. Adding a `data` listener makes node:http read the socket in JavaScript
 * instead of handing it to the parser in C++, its designed behaviour for such listeners. Should a
 * Node version wire connections differently, nothing is replaced: the strict parser alone then
 * refuses bare-LF heads, and never relaxes framing.
 *
 * Reading in JavaScript costs (measured: ~45 µs of CPU per 16 KiB segment, ~20 % for large ones),
 * so a connection whose first request-line ends with CRLF goes back to the parser's own reading
 * at once: such a client sends CRLF heads, and a bare-LF head later on that connection is refused
 * by the strict parser (400), never misread.
 */
function normalizeBareLfHeads(socket: ServerSocket): void {
  const parser = socket.parser as { consume?(handle: unknown): void; _consumed?: boolean } | undefined;
  const feeds = socket.listeners('data');
  if (!parser || feeds.length !== 1) return;
  const feed = feeds[0] as (chunk: Buffer) => void;
  // node:http's hooks that pause and resume a consumed socket (they go when it is unconsumed).
  const pauses = socket.listeners('pause') as Array<() => void>;
  const resumes = socket.listeners('resume') as Array<() => void>;
  const normalizer = new BareLfHeadNormalizer();
  const tap = (chunk: Buffer): void => {
    // CONNECT or an upgrade: node:http let go of the connection; the rest is not for the parser.
    if (socket.parser !== parser) {
      socket.removeListener('data', tap);
      return;
    }
    feed(normalizer.push(chunk));
    if ((normalizer.firstLineEnding === 'crlf' || normalizer.passingThrough) && socket.parser === parser) handBack();
  };
  const handBack = (): void => {
    const handle = (socket as unknown as { _handle?: unknown })._handle;
    if (typeof parser.consume !== 'function' || !handle || socket.readableLength > 0) return;
    socket.removeListener('data', tap);
    // Back to node:http's own wiring (without its listener wrappers, which would unconsume again).
    const plainOn = net.Socket.prototype.on as (this: Socket, event: string, fn: (...args: never[]) => void) => Socket;
    const on = (event: string, fn: (...args: never[]) => void) => plainOn.call(socket, event, fn);
    on('data', feed);
    for (const fn of pauses) on('pause', fn);
    for (const fn of resumes) on('resume', fn);
    parser.consume(handle);
    parser._consumed = true;
  };
  socket.removeListener('data', feed);
  socket.on('data', tap);
}

/**
 * node:http emits pipelined requests at once; hand them to the app one after the other per
 * connection, as nginx does (RFC 9112 §9.3.2 allows parallel processing for safe methods only).
 * A request that breaks the framing rules is answered here and ends the connection; a request
 * queued behind an answer that closes the connection is never run.
 */
function oneRequestAtATime(handler: http.RequestListener, sendTimeouts: SendTimeouts, lastResponses: WeakMap<Socket, Response>, onRequest?: HttpServerOptions['onRequest']): http.RequestListener {
  const tails = new WeakMap<Socket, Promise<void>>();
  return (req, res) => {
    const socket = req.socket;
    lastResponses.set(socket, res);
    const run = (): Promise<void> =>
      new Promise<void>((resolve) => {
        res.once('close', () => resolve());
        if (socket.destroyed || socket.writableEnded) {
          res.destroy();
          return;
        }
        sendTimeouts.reset(socket);
        onRequest?.(req, res);
        const problem = requestFramingProblem(req);
        if (problem) return answerPlain(res, problem.status, problem.reason);
        if (closesConnection(req)) res.shouldKeepAlive = false;
        handler(req, res);
      });
    const previous = tails.get(socket);
    tails.set(socket, previous ? previous.then(run) : run());
  };
}

/** The status line text and headers of a `text/plain` one-line answer that closes the connection (D14). */
function plainParts(status: number, reason: string): { text: string; headers: Record<string, string>; body: string } {
  const body = `${reason.replace(/[^\x20-\x7e]+/g, ' ')}\n`;
  return {
    text: STATUS_TEXT[status] ?? '',
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' },
    body,
  };
}

/** The answer as raw bytes, for a connection node:http no longer answers on. */
function plainAnswer(status: number, reason: string): string {
  const { text, headers, body } = plainParts(status, reason);
  return `HTTP/1.1 ${status} ${text}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`;
}

function answerPlain(res: http.ServerResponse, status: number, reason: string): void {
  const { text, headers, body } = plainParts(status, reason);
  res.writeHead(status, text, headers);
  res.end(body);
}

function answerClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: ServerSocket, lastResponses: WeakMap<Socket, Response>, onRefused?: HttpServerOptions['onRefused']): void {
  // Bytes after a complete Connection: close request: HTTP framing already ended that request.
  if (err.code === 'HPE_CLOSED_CONNECTION') return;
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, text] = PARSER_ERRORS[err.code ?? ''] ?? [400, 'malformed HTTP request'];
  // llhttp's own words say what was wrong ("Expected LF after chunk data").
  const detail = /^HPE_(?!PAUSED)/.test(err.code ?? '') && err.reason ? ` (${err.reason})` : '';
  const answer = plainAnswer(status, `${text}${detail}`);
  const inProgress = socket._httpMessage;
  const last = lastResponses.get(socket);
  if (last && !last.writableEnded) {
    // The bad bytes follow complete requests still being answered (D17): those answers go out
    // first, then this one, then the connection closes.
    if (last.req?.complete) {
      last.shouldKeepAlive = false;
      last.prependOnceListener('finish', () => {
        socket[ANSWERED_BY_HTTP_LAYER] = true;
        if (socket.writable) socket.write(answer);
        onRefused?.(socket, status, text);
      });
      return;
    }
    // The error is in the body of a request queued behind the one being answered: close after
    // that answer (the queued request is never run).
    if (inProgress && inProgress !== last) {
      inProgress.shouldKeepAlive = false;
      return;
    }
    if (last.headersSent) {
      socket.destroy();
      return;
    }
  } else if (last && !last.req?.complete) {
    // The request was answered already (e.g. refused before its body was read): its answer ends
    // the connection, nothing more to say.
    socket.end();
    return;
  }
  socket[ANSWERED_BY_HTTP_LAYER] = true;
  endWith(socket, answer);
  onRefused?.(socket, status, text);
}
