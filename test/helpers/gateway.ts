import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import pino from 'pino';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway';
import { parseConfig } from '../../src/config/parse';
import { freePort, tempDir } from './process';

/** One request the capture backend received. */
export interface BackendCall {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
  /** The generated form's fields in order (name, value as latin1); empty when its layout is not the module's exactly (see `formError`). */
  fields: Array<[string, string]>;
  /** Why the body is not the module's exact form layout (§4.6), if it is not. */
  formError?: string;
  /** For each field value that is a file in the store (with `store` given): its bytes when the backend got the call. */
  files: Map<string, Buffer>;
}

/**
 * A real HTTP backend that records hand-offs and answers `status` (default 200, or `?status=NNN`
 * in the request-target) with body `backend NNN\n`, like the conformance runner's capture backend.
 */
export class CaptureBackend {
  readonly calls: BackendCall[] = [];
  private server!: http.Server;
  port = 0;
  /** Delay before answering (ms), to hold a hand-off open. */
  delayMs = 0;

  /** `store`: record the bytes of the files the form names there, as they are at the hand-off. */
  constructor(private readonly store?: string) {}

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const boundary = /boundary=("?)([^";]+)\1/.exec(String(req.headers['content-type'] ?? ''))?.[2] ?? '';
        let fields: Array<[string, string]> = [];
        let formError: string | undefined;
        try {
          fields = parseGeneratedForm(body, boundary);
        } catch (err) {
          formError = (err as Error).message;
        }
        const files = new Map<string, Buffer>();
        for (const [, value] of fields) {
          if (this.store && value.startsWith(this.store + path.sep) && existsSync(value)) files.set(value, readFileSync(value));
        }
        this.calls.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, body, fields, formError, files });
        const m = /[?&]status=(\d{3})/.exec(req.url ?? '');
        const status = m ? Number(m[1]) : 200;
        setTimeout(() => {
          res.writeHead(status, { 'Content-Type': 'text/plain', 'X-Capture-Id': String(this.calls.length) });
          res.end(`backend ${status}\n`);
        }, this.delayMs);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  field(call: BackendCall, name: string): string | undefined {
    return call.fields.find(([n]) => n === name)?.[1];
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Splits the module's generated body (§4.6) into fields; throws when the layout is not exact. */
export function parseGeneratedForm(body: Buffer, boundary: string): Array<[string, string]> {
  const text = body.toString('latin1');
  const end = `\r\n--${boundary}--\r\n`;
  if (!text.endsWith(end)) throw new Error(`generated body does not end with the closing delimiter: ${JSON.stringify(text)}`);
  const inner = text.slice(0, -end.length);
  if (inner === '') return [];
  const first = `--${boundary}\r\n`;
  if (!inner.startsWith(first)) throw new Error(`generated body does not start with the boundary: ${JSON.stringify(text)}`);
  return inner
    .slice(first.length)
    .split(`\r\n--${boundary}\r\n`)
    .map((chunk) => {
      const m = /^Content-Disposition: form-data; name="([^"]*)"\r\n\r\n([\s\S]*)$/.exec(chunk);
      if (!m) throw new Error(`malformed generated field: ${JSON.stringify(chunk)}`);
      return [m[1], m[2]] as [string, string];
    });
}

/** Splits a form leniently (no nested headers beyond Content-Disposition), for bodies not made by the gateway. */
export function parseFields(contentType: string, body: Buffer): Array<[string, string]> {
  const m = /boundary=("?)([^";]+)\1/.exec(contentType);
  if (!m) return [];
  const text = body.toString('latin1');
  const delimiter = `--${m[2]}`;
  const fields: Array<[string, string]> = [];
  for (const part of text.split(delimiter).slice(1)) {
    if (part.startsWith('--')) break;
    const headerEnd = part.indexOf('\r\n\r\n');
    const name = /name="([^"]*)"/.exec(part.slice(0, headerEnd))?.[1] ?? '';
    fields.push([name, part.slice(headerEnd + 4).replace(/\r\n$/, '')]);
  }
  return fields;
}

export interface TestGateway {
  gateway: Gateway;
  backend: CaptureBackend;
  port: number;
  url: string;
  store: string;
  state: string;
  dir: string;
  close(): Promise<void>;
}

/**
 * Starts an in-process gateway on a free port with a capture backend. `locationBody` is the
 * inside of `location /upload { … }`; `__STORE__`, `__STATE__` and `__BACKEND__` are substituted
 * there and in `topLevel` (which may hold more locations).
 * Default: the conformance profile's fields, resumable on. `sweep: false`: no periodic expiry sweep.
 */
export async function startTestGateway(options: { locationBody?: string; topLevel?: string; gatewayOptions?: GatewayOptions; sweep?: boolean } = {}): Promise<TestGateway> {
  const dir = tempDir('gw-');
  const store = path.join(dir, 'store');
  const state = path.join(dir, 'state');
  mkdirSync(store);
  mkdirSync(state);
  const backend = await new CaptureBackend().start();
  const port = await freePort();
  const substitute = (text: string) => text
    .replace(/__STORE__/g, store)
    .replace(/__STATE__/g, state)
    .replace(/__BACKEND__/g, `127.0.0.1:${backend.port}`);
  const body = substitute(options.locationBody ?? DEFAULT_LOCATION);
  const text = `listen 127.0.0.1:${port};\nclient_max_body_size 100m;\n${substitute(options.topLevel ?? '')}\nlocation /upload {\n${body}\n}\n`;
  const gateway = createGateway(parseConfig(text, path.join(dir, 'test.conf')), { logger: pino({ level: 'silent' }), ...options.gatewayOptions });
  try {
    // `sweep: false` listens without gateway.listen(), so no periodic expiry sweep runs: the test
    // decides when sweepExpired() happens.
    if (options.sweep === false) await new Promise<void>((resolve) => gateway.server.listen(port, '127.0.0.1', resolve));
    else await gateway.listen();
  } catch (err) {
    await backend.stop();
    throw err;
  }
  return {
    gateway, backend, port, url: `http://127.0.0.1:${port}`, store, state, dir,
    async close() {
      await gateway.close();
      await backend.stop();
    },
  };
}

export const DEFAULT_LOCATION = `
    upload_pass http://__BACKEND__;
    upload_resumable on;
    upload_store __STORE__ 1;
    upload_state_store __STATE__;
    upload_set_form_field name "$upload_file_name";
    upload_set_form_field content_type "$upload_content_type";
    upload_set_form_field path "$upload_tmp_path";
    upload_set_form_field field "$upload_field_name";
    upload_set_form_field range "$upload_content_range";
    upload_set_form_field number "$upload_file_number";
    upload_aggregate_form_field md5 "$upload_file_md5";
    upload_aggregate_form_field sha1 "$upload_file_sha1";
    upload_aggregate_form_field sha256 "$upload_file_sha256";
    upload_aggregate_form_field crc32 "$upload_file_crc32";
    upload_aggregate_form_field size "$upload_file_size";
    upload_pass_form_field "^submit$|^description$";
    upload_pass_args on;
    upload_cleanup 400 404 499 500-505;
    upload_completed_retention 60s;
`;

export interface RawResponse {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  /** All header lines in order (name, value). */
  headerList: Array<[string, string]>;
  body: Buffer;
  /** Bytes received in total, raw (for 1xx checks). */
  raw: Buffer;
  closed: boolean;
}

/**
 * Sends bytes on a fresh TCP connection and reads until the server closes (or `idleMs` of
 * silence). Returns the last final response; interim 1xx responses stay in `raw`.
 */
export function rawRequest(port: number, data: Buffer | string, options: { halfClose?: boolean; idleMs?: number; host?: string; localAddress?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    let closed = false;
    const finish = () => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      try {
        resolve({ ...parseResponse(Buffer.concat(chunks)), closed });
      } catch (err) {
        reject(err);
      }
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(finish, options.idleMs ?? 3000);
    };
    socket.on('connect', () => {
      socket.write(data);
      if (options.halfClose) socket.end();
      arm();
    });
    socket.on('data', (c) => {
      chunks.push(c);
      arm();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
}

function parseResponse(raw: Buffer): Omit<RawResponse, 'closed'> {
  let offset = 0;
  for (;;) {
    const headEnd = raw.indexOf('\r\n\r\n', offset);
    if (headEnd < 0) return { status: 0, statusText: '', headers: {}, headerList: [], body: Buffer.alloc(0), raw };
    const head = raw.subarray(offset, headEnd).toString('latin1').split('\r\n');
    const [, code, ...text] = head[0].split(' ');
    const status = Number(code);
    const headerList: Array<[string, string]> = head.slice(1).map((line) => {
      const i = line.indexOf(':');
      return [line.slice(0, i), line.slice(i + 1).trim()];
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of headerList) headers[k.toLowerCase()] = v;
    if (status >= 100 && status < 200) {
      offset = headEnd + 4;
      continue;
    }
    const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : raw.length - headEnd - 4;
    return { status, statusText: text.join(' '), headers, headerList, body: raw.subarray(headEnd + 4, headEnd + 4 + length), raw };
  }
}

/** Builds a raw HTTP/1.1 request (Host first, Content-Length and Connection: close added unless given). */
export function httpRequest(method: string, target: string, headers: Array<[string, string]>, body?: Buffer | string): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: test'];
  const has = (n: string) => headers.some(([k]) => k.toLowerCase() === n);
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  const bodyBuf = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1');
  if (body !== undefined && !has('content-length') && !has('transfer-encoding')) lines.push(`Content-Length: ${bodyBuf.length}`);
  if (!has('connection')) lines.push('Connection: close');
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), bodyBuf]);
}

/** A resumable segment request with the usual legacy-client headers. */
export function segmentRequest(sessionId: string, start: number, end: number, total: number, body: Buffer | string, extra: Array<[string, string]> = [], target = '/upload'): Buffer {
  return httpRequest('POST', target, [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="big.bin"'],
    ['X-Content-Range', `bytes ${start}-${end}/${total}`],
    ['Session-ID', sessionId],
    ...extra,
  ], body);
}

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the integration tests.

export { sleep } from './segments';

let sessionCounter = 0;
/** A session id unique in this test process (its last character picks the hashed store dir). */
export function sid(prefix = 's'): string {
  sessionCounter += 1;
  return `${prefix}${process.pid}x${sessionCounter}`;
}

/** Relative paths of every file below `dir`, sorted. */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full).map((f) => path.join(entry.name, f)));
    else out.push(entry.name);
  }
  return out.sort();
}

/** `<store>/<last char>/<id>` (`upload_store <store> 1`). */
export function dataPath(gw: TestGateway, id: string): string {
  return path.join(gw.store, id.slice(-1), id);
}

export function send(gw: TestGateway, request: Buffer | string, options: { halfClose?: boolean } = {}): Promise<RawResponse> {
  return rawRequest(gw.port, request, options);
}

/** The D22 status query. */
export function query(gw: TestGateway, id: string, method = 'GET', header = 'Session-ID'): Promise<RawResponse> {
  return rawRequest(gw.port, httpRequest(method, '/upload', [[header, id]]));
}

export function lastCall(gw: TestGateway): BackendCall {
  return gw.backend.calls[gw.backend.calls.length - 1];
}

/** D14: a `text/plain` one-line reason with the given status. */
export function expectPlainError(res: { status: number; headers: Record<string, string>; body: Buffer } | undefined, status: number): void {
  expect(res).toBeDefined();
  expect(res!.status).toBe(status);
  expect(res!.headers['content-type']).toBe('text/plain; charset=utf-8');
  expect(res!.body.toString('latin1')).toMatch(/^[^\r\n]+\n$/);
}

/** One HTTP answer parsed from raw bytes. */
export interface Answer {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** Every answer on a connection, in order (1xx included; HEAD answers have no body). */
export function parseAll(raw: Buffer, head = false): Answer[] {
  const out: Answer[] = [];
  let offset = 0;
  while (offset < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', offset);
    if (headEnd < 0) break;
    const lines = raw.subarray(offset, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
    if (!m) break;
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    const length = status >= 200 && !head ? Number(headers['content-length'] ?? raw.length - headEnd - 4) : 0;
    out.push({ status, statusText: m[2], headers, body: raw.subarray(headEnd + 4, headEnd + 4 + length) });
    offset = headEnd + 4 + length;
  }
  return out;
}
