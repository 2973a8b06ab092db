/**
 * Real sockets, real files: an in-process gateway, a capture backend and a raw HTTP client for
 * the multipart integration tests.
 */
import { createHash } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/parse';
import { createGateway, type Gateway } from '../../src/gateway';

import { CaptureBackend } from '../helpers/gateway';
import { tempDir } from '../helpers/process';

export interface Env {
  gateway: Gateway;
  backend: CaptureBackend;
  port: number;
  store: string;
  dir: string;
  close(): Promise<void>;
}

/** Starts a gateway from config text; `LOCATION_EXTRA` directives go into `location = /up`. */
export async function startEnv(locationExtra: string, options: { sets?: boolean; aggregates?: string[] } = {}): Promise<Env> {
  const dir = tempDir('multipart-test-');
  const store = path.join(dir, 'store');
  const backend = new CaptureBackend(store);
  await backend.start();
  const sets = options.sets === false
    ? ''
    : ['name $upload_file_name', 'content_type $upload_content_type', 'path $upload_tmp_path', 'field $upload_field_name', 'range $upload_content_range', 'number $upload_file_number']
        .map((s) => `upload_set_form_field "$upload_field_name.${s.split(' ')[0]}" "${s.split(' ')[1]}";`)
        .join('\n');
  const aggregates = (options.aggregates ?? ['md5 $upload_file_md5', 'size $upload_file_size', 'arange $upload_content_range'])
    .map((s) => `upload_aggregate_form_field "$upload_field_name.${s.split(' ')[0]}" "${s.split(' ')[1]}";`)
    .join('\n');
  const text = `
listen 127.0.0.1:0;
client_max_body_size 0;
location = /up {
  upload_pass http://127.0.0.1:${backend.port};
  upload_store ${store} 1;
  upload_state_store ${path.join(dir, 'state')};
  ${sets}
  ${aggregates}
  ${locationExtra}
}
`;
  let gateway: Gateway;
  let address: net.AddressInfo;
  try {
    gateway = createGateway(parseConfig(text, 'test.conf'), { logger: pino({ level: 'silent' }) });
    address = await gateway.listen();
  } catch (err) {
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    gateway,
    backend,
    port: address.port,
    store,
    dir,
    async close() {
      await gateway.close();
      await backend.stop();
      rmSync(dir, { recursive: true, force: true });
      // Every form the gateway generated has the module's layout exactly.
      const malformed = backend.calls.find((call) => call.formError !== undefined);
      if (malformed) throw new Error(`a generated form is not in the module's layout: ${malformed.formError}`);
    },
  };
}

/** Every file below `dir` (relative paths). */
export { listFiles as storeFiles } from '../helpers/gateway';

export function fileMode(file: string): number {
  return statSync(file).mode & 0o777;
}

export interface RawResponse {
  status: number;
  /** All header lines in order, [name, value]. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** Every status line seen (interim ones included). */
  statuses: number[];
}

export function header(res: RawResponse, name: string): string[] {
  return res.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

function parseResponse(data: Buffer): RawResponse {
  const statuses: number[] = [];
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`incomplete response: ${JSON.stringify(rest.toString('latin1'))}`);
    const head = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    statuses.push(status);
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    const headers = head.slice(1).map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i), l.slice(i + 1).trim()] as [string, string];
    });
    return { status, headers, body: rest, statuses };
  }
}

/** Sends raw bytes on a fresh connection and reads until the server closes it. */
export function rawRequest(port: number, bytes: Buffer, timeoutMs = 20000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout waiting for the response'));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (err) {
        reject(err);
      }
    });
    socket.write(bytes);
  });
}

/** A POST with Content-Length and Connection: close. */
export function requestBytes(pathAndQuery: string, headers: Array<[string, string]>, body: Buffer | string, options: { contentLength?: number } = {}): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const lines = [`POST ${pathAndQuery} HTTP/1.1`, 'Host: gateway.test', ...headers.map(([n, v]) => `${n}: ${v}`), `Content-Length: ${options.contentLength ?? bytes.length}`, 'Connection: close'];
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), bytes]);
}

export function post(port: number, pathAndQuery: string, boundary: string, body: Buffer | string, headers: Array<[string, string]> = []): Promise<RawResponse> {
  return rawRequest(port, requestBytes(pathAndQuery, [['Content-Type', `multipart/form-data; boundary=${boundary}`], ...headers], body));
}

export function digest(algorithm: string, data: Buffer): string {
  return createHash(algorithm).update(data).digest('hex');
}

/** A multipart body from parts; `raw` parts are inserted verbatim. */
export function multipartBody(boundary: string, parts: Array<{ headers: string[]; data: Buffer | string }>, close = true): Buffer {
  const pieces: Buffer[] = [];
  for (const p of parts) {
    pieces.push(Buffer.from(`--${boundary}\r\n${p.headers.map((h) => h + '\r\n').join('')}\r\n`, 'latin1'));
    pieces.push(typeof p.data === 'string' ? Buffer.from(p.data, 'latin1') : p.data);
    pieces.push(Buffer.from('\r\n', 'latin1'));
  }
  if (close) pieces.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  else if (pieces.length > 0) pieces.pop(); // no CRLF after the last data either
  return Buffer.concat(pieces);
}

export async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
