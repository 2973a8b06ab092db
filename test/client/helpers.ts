/**
 * Helpers for the client tests: the built client (dist/client, as published: p-limit is ESM-only
 * and bundled there), a counting HTTP proxy that sits in front of the gateway and records every
 * request's range, body bytes and whether its answer reached the client, and a TCP relay that
 * drops connections at random.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type * as ClientApi from '../../client/src/node';
import type { BackendCall, CaptureBackend } from '../helpers/gateway';
import { REPO_ROOT } from '../helpers/process';
import { addRange, prng, type ByteRange } from '../helpers/segments';

const BUILT = path.join(REPO_ROOT, 'dist', 'client', 'index.cjs');

/** The published CommonJS build of `upload-gateway/client`. */
export function loadClient(): typeof ClientApi {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run npm run build first (npm test does)`);
  return require(BUILT) as typeof ClientApi;
}

/** The one hand-off of `sessionName`'s upload (the file name) and the bytes of the file it points to. */
export function handedOff(backend: CaptureBackend, name: string): { calls: BackendCall[]; data: Buffer | null } {
  const calls = backend.calls.filter((c) => backend.field(c, 'name') === Buffer.from(name, 'utf8').toString('latin1'));
  const filePath = calls[0] ? backend.field(calls[0], 'path') : undefined;
  return { calls, data: filePath && existsSync(filePath) ? readFileSync(filePath) : null };
}

export interface ProxiedRequest {
  method: string;
  session: string | undefined;
  range: ByteRange | undefined;
  /** Body bytes that reached the proxy (and were passed on). */
  bodyBytes: number;
  status: number | undefined;
  /** The whole answer reached the client with a 2xx status. */
  acknowledged: boolean;
  /** The gateway answered 2xx: it holds these bytes (whether or not the client got the answer). */
  recorded: boolean;
  /** A status query's answer: the ranges it reported. */
  reported: ByteRange[] | undefined;
  /** Bytes the client had been told the server holds (2xx segment answers and status answers it received) when this request started. */
  knownBefore: ByteRange[];
}

/** An HTTP proxy in front of the gateway that counts what arrives. */
export class CountingProxy {
  readonly requests: ProxiedRequest[] = [];
  /** Answer every GET with 405 and an HTML page, as nginx_upload_module does. */
  rejectStatusQuery = false;
  /** Flip one byte of the next N segment bodies (D21 checksum mismatch on the way). */
  corruptBodies = 0;
  /** Answer the next N POSTs with this status and headers instead of passing them on. */
  injected: Array<{ status: number; headers: Record<string, string> }> = [];
  /** Refuse requests without this Authorization header (401). */
  requireAuthorization: string | undefined;
  /** Read request bodies at most this fast (all requests together), like a slow uplink. */
  throttleBytesPerSecond = 0;
  private throttled = { since: 0, bytes: 0 };
  port = 0;
  private server!: http.Server;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/upload`;
  }

  /** Union of the ranges whose acknowledgement reached the client. */
  acknowledged(session?: string): ByteRange[] {
    return this.union((r) => r.acknowledged, session);
  }

  /** Union of the ranges the gateway recorded (answered 2xx). */
  recorded(session?: string): ByteRange[] {
    return this.union((r) => r.recorded, session);
  }

  /** What the client has been told the server holds: acknowledged segments and the ranges of status answers it received. */
  knownToClient(session?: string): ByteRange[] {
    let set = this.acknowledged(session);
    for (const r of this.requests) {
      if (!r.acknowledged || !r.reported || (session !== undefined && r.session !== session)) continue;
      for (const range of r.reported) set = addRange(set, range);
    }
    return set;
  }

  private union(pick: (r: ProxiedRequest) => boolean, session: string | undefined): ByteRange[] {
    let set: ByteRange[] = [];
    for (const r of this.requests) if (pick(r) && r.range && (session === undefined || r.session === session)) set = addRange(set, r.range);
    return set;
  }

  segments(session?: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && (session === undefined || r.session === session));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const session = req.headers['session-id'] as string | undefined;
    const m = /^bytes (\d+)-(\d+)\/\d+$/.exec(String(req.headers['x-content-range'] ?? ''));
    const record: ProxiedRequest = {
      method: req.method!,
      session,
      range: m ? { start: Number(m[1]), end: Number(m[2]) } : undefined,
      bodyBytes: 0,
      status: undefined,
      acknowledged: false,
      recorded: false,
      reported: undefined,
      knownBefore: this.knownToClient(session),
    };
    this.requests.push(record);
    res.on('finish', () => {
      record.acknowledged = record.status !== undefined && record.status >= 200 && record.status < 300;
    });
    const answerHere = (status: number, headers: Record<string, string>, body: string) => {
      req.on('data', (c: Buffer) => (record.bodyBytes += c.length));
      req.on('end', () => {
        record.status = status;
        res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
        res.end(body);
      });
    };
    if (this.requireAuthorization !== undefined && req.headers.authorization !== this.requireAuthorization) {
      return answerHere(401, { 'Content-Type': 'text/plain' }, 'authorization required\n');
    }
    if (req.method === 'GET' && this.rejectStatusQuery) {
      return answerHere(405, { 'Content-Type': 'text/html' }, '<html>\r\n<head><title>405 Not Allowed</title></head>\r\n</html>\r\n');
    }
    if (req.method === 'POST' && this.injected.length > 0) {
      const { status, headers } = this.injected.shift()!;
      return answerHere(status, { 'Content-Type': 'text/plain', ...headers }, `injected ${status}\n`);
    }
    const flat: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) flat.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    const upstream = http.request({ host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: flat as unknown as http.OutgoingHttpHeaders, agent: false });
    let corrupt = req.method === 'POST' && this.corruptBodies > 0;
    if (corrupt) this.corruptBodies--;
    req.on('data', (c: Buffer) => {
      record.bodyBytes += c.length;
      this.throttle(req, c.length);
      if (corrupt) {
        c = Buffer.from(c);
        c[0] = c[0]! ^ 0xff;
        corrupt = false;
      }
      upstream.write(c);
    });
    let bodyForwarded = false;
    req.on('end', () => {
      bodyForwarded = true;
      upstream.end();
    });
    // The client went away mid-body (an abort): the gateway sees the request cut too. Once the
    // whole body was passed on, the request goes on (as bytes in flight on a network would), so
    // what the gateway records is always seen here.
    res.on('close', () => {
      if (!res.writableFinished && !bodyForwarded) upstream.destroy();
    });
    res.on('error', () => undefined);
    upstream.on('response', (answer) => {
      record.status = answer.statusCode;
      record.recorded = req.method === 'POST' && answer.statusCode! >= 200 && answer.statusCode! < 300;
      if (req.method === 'GET' && answer.statusCode === 200) {
        record.reported = String(answer.headers.range ?? '')
          .split(',')
          .map((e) => /^(\d+)-(\d+)\/\d+$/.exec(e.trim()))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => ({ start: Number(m[1]), end: Number(m[2]) }));
      }
      if (res.destroyed) {
        answer.resume();
        return;
      }
      res.writeHead(answer.statusCode!, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
  }

  /** Pauses `req` while the bytes read so far are ahead of the throttle rate. */
  private throttle(req: http.IncomingMessage, bytes: number): void {
    if (this.throttleBytesPerSecond <= 0) return;
    const now = Date.now();
    if (this.throttled.since === 0) this.throttled.since = now;
    this.throttled.bytes += bytes;
    const due = this.throttled.since + (this.throttled.bytes / this.throttleBytesPerSecond) * 1000;
    if (due > now + 5) {
      req.pause();
      setTimeout(() => req.resume(), due - now);
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/**
 * Relays `client` ⇄ `upstream` with back-pressure, each closing with the other; `pass.up` and
 * `pass.down` see every chunk first and return false when the relay cut the pair instead.
 */
export function relayConnection(client: net.Socket, upstream: net.Socket, sockets: Set<net.Socket>, pass: { up(d: Buffer): boolean; down(d: Buffer): boolean }): void {
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  }
  client.on('data', (d: Buffer) => {
    if (pass.up(d) && !upstream.write(d)) client.pause();
  });
  upstream.on('drain', () => client.resume());
  upstream.on('data', (d: Buffer) => {
    if (pass.down(d) && !client.write(d)) upstream.pause();
  });
  client.on('drain', () => upstream.resume());
  client.on('end', () => upstream.end());
  upstream.on('end', () => client.end());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}

/** Runs the built CLI (`upload-gateway upload …`); `interrupt` sends SIGINT (Ctrl-C). */
export function runUploadCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; interrupt(): void } {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/upload-gateway.js'), 'upload', ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { done, interrupt: () => child.kill('SIGINT') };
}

/**
 * A TCP relay that drops connections at random: per connection, with `probability`, it cuts both
 * sockets after a random number of bytes in one direction: requests cut mid-body (within
 * `maxCutBytes`), or answers lost after the gateway acted on the request (within
 * `maxAnswerCutBytes`).
 */
export class DroppingRelay {
  drops = 0;
  /** Drops while the client was sending (request cut) and while the gateway was answering (answer lost). */
  requestCuts = 0;
  answerCuts = 0;
  connections = 0;
  port = 0;
  private server!: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly random: () => number;

  constructor(private readonly targetPort: number, private readonly options: { seed: number; probability: number; maxCutBytes: number; maxAnswerCutBytes?: number }) {
    this.random = prng(options.seed);
  }

  async start(): Promise<this> {
    this.server = net.createServer((client) => this.relay(client));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/upload`;
  }

  private relay(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    let cut: { up: boolean; after: number } | null = null;
    if (this.random() < this.options.probability) {
      const up = this.random() < 0.5;
      // Answers are a few hundred bytes each: an answer cut falls within the first few of them.
      cut = { up, after: Math.floor(this.random() * (up ? this.options.maxCutBytes : this.options.maxAnswerCutBytes ?? 1500)) };
    }
    let up = 0;
    let down = 0;
    let dropped = false;
    const drop = () => {
      if (dropped) return;
      dropped = true;
      this.drops++;
      client.resetAndDestroy();
      upstream.destroy();
    };
    relayConnection(client, upstream, this.sockets, {
      up: (d) => {
        up += d.length;
        if (!(cut?.up && up > cut.after)) return true;
        if (!dropped) this.requestCuts++;
        drop();
        return false;
      },
      down: (d) => {
        down += d.length;
        if (!(cut && !cut.up && down > cut.after)) return true;
        if (!dropped) this.answerCuts++;
        drop();
        return false;
      },
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * POSTs that carried bytes the client had been told the server holds (by a segment answer or a
 * status answer it received before sending). "No byte twice" means this is empty.
 */
export function resentKnownBytes(requests: readonly ProxiedRequest[]): Array<{ range: ByteRange; overlaps: ByteRange[] }> {
  const out: Array<{ range: ByteRange; overlaps: ByteRange[] }> = [];
  for (const r of requests) {
    if (r.method !== 'POST' || !r.range) continue;
    const overlaps = r.knownBefore.filter((a) => a.start <= r.range!.end && r.range!.start <= a.end);
    if (overlaps.length) out.push({ range: r.range, overlaps });
  }
  return out;
}

/**
 * Checks "abort then resume sends no byte twice", counted at the proxy in front of the server:
 * no request carried bytes the client had been told the server holds; every segment whose answer
 * reached the client was a different part of the file (their bodies add up to at most the file);
 * and the only segments without an answer are those the abort cut off (`cut`) or 503 refusals.
 * Returns the byte counts for the test's own checks.
 */
export function checkNoByteTwice(segments: readonly ProxiedRequest[], size: number, cut: readonly ProxiedRequest[]): { total: number; acknowledged: number; cutBytes: number } {
  const sum = (rs: readonly ProxiedRequest[]) => rs.reduce((n, r) => n + r.bodyBytes, 0);
  const acknowledged = segments.filter((r) => r.acknowledged);
  const others = segments.filter((r) => !r.acknowledged && !cut.includes(r) && r.status !== 503);
  if (resentKnownBytes(segments).length > 0) throw new Error(`bytes known to be on the server were sent again: ${JSON.stringify(resentKnownBytes(segments))}`);
  if (sum(acknowledged) > size) throw new Error(`acknowledged segments carried ${sum(acknowledged)} bytes for a file of ${size}`);
  if (others.length > 0) throw new Error(`segments lost without an abort or a 503: ${JSON.stringify(others.map((r) => [r.range, r.status]))}`);
  return { total: sum(segments), acknowledged: sum(acknowledged), cutBytes: sum(cut) };
}
