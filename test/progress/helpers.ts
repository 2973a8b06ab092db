/**
 * Helpers for the progress endpoint tests: the §11 test configuration of the spec (progress
 * locations for every output), an upload whose body is sent piece by piece on a raw socket, probes,
 * and a Server-Sent Events client that records when each event arrived.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { DEFAULT_LOCATION, httpRequest, rawRequest, type RawResponse } from '../helpers/gateway';

/** The upload location of the tests: the default profile, tracked in zone `proxied` (5 s). */
export const TRACKED_LOCATION = `${DEFAULT_LOCATION}\n    track_uploads proxied 5s;\n`;

/** spec upload-progress-module.md §11, with the gateway's upload locations instead of proxy_pass. */
export const PROGRESS_TOP_LEVEL = `
upload_progress proxied 1m;
location /small {
    upload_pass http://__BACKEND__;
    upload_resumable on;
    upload_store __STORE__ 1;
    upload_state_store __STATE__;
    client_max_body_size 100;
    track_uploads proxied 5s;
}
location /hdrupload {
    upload_pass http://__BACKEND__;
    upload_resumable on;
    upload_store __STORE__ 1;
    upload_state_store __STATE__;
    upload_progress_header X-Upload-Key;
    track_uploads proxied 5s;
}
location ^~ /progress { report_uploads proxied; }
location = /p-json  { upload_progress_json_output;  report_uploads proxied; }
location = /p-jsonp { upload_progress_jsonp_output; report_uploads proxied; }
location = /p-java  { upload_progress_java_output;  report_uploads proxied; }
location = /p-cb    { upload_progress_jsonp_output; upload_progress_jsonp_parameter cb; report_uploads proxied; }
location = /p-hdr   { upload_progress_header X-Upload-Key; upload_progress_json_output; report_uploads proxied; }
location = /p-xml {
    upload_progress_content_type 'text/xml';
    upload_progress_template starting '<upload><state>starting</state></upload>';
    upload_progress_template uploading '<upload><state>uploading</state><size>$uploadprogress_length</size><uploaded>$uploadprogress_received</uploaded><remaining>$uploadprogress_remaining</remaining></upload>';
    upload_progress_template done '<upload><state>done</state><size>$uploadprogress_length</size><uploaded>$uploadprogress_received</uploaded></upload>';
    upload_progress_template error '<upload><state>error</state><code>$uploadprogress_status</code></upload>';
    report_uploads proxied;
}
location = /p-partial {
    upload_progress_template starting 'S';
    upload_progress_template up 'U $uploadprogress_received/$uploadprogress_length cb=[$uploadprogress_callback] arg=[$arg_x]';
    report_uploads proxied;
}
`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET (or another method) on a fresh connection; the answer as bytes. */
export function probe(port: number, target: string, headers: Array<[string, string]> = [], method = 'GET', idleMs = 3000): Promise<RawResponse> {
  return rawRequest(port, httpRequest(method, target, headers), { idleMs });
}

/** Polls `target` until its body is `body` (or `pred` holds); returns the last answer. */
export async function probeUntil(port: number, target: string, expected: string | ((body: string) => boolean), timeoutMs = 3000): Promise<RawResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await probe(port, target);
    const text = res.body.toString('latin1');
    if (typeof expected === 'string' ? text === expected : expected(text)) return res;
    if (Date.now() > deadline) throw new Error(`${target}: still ${JSON.stringify(text)} after ${timeoutMs} ms, expected ${typeof expected === 'string' ? JSON.stringify(expected) : 'a match'}`);
    await sleep(25);
  }
}

/** An upload whose head and body pieces go out when the test says so, on one raw connection. */
export interface OpenUpload {
  write(data: Buffer | string): void;
  /** Sends the last bytes (if any) and resolves with the answer. */
  finish(data?: Buffer | string): Promise<RawResponse>;
  /** Closes the connection mid-request. */
  destroy(): void;
}

export function openUpload(port: number, target: string, headers: Array<[string, string]>): OpenUpload {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const head = [`POST ${target} HTTP/1.1`, 'Host: test', ...headers.map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''].join('\r\n');
  socket.write(head);
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return {
    write: (data) => void socket.write(data),
    async finish(data) {
      if (data !== undefined) socket.write(data);
      await closed;
      return parse(Buffer.concat(chunks));
    },
    destroy: () => socket.destroy(),
  };
}

function parse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1').split('\r\n');
  const [, code, ...text] = (head[0] ?? '').split(' ');
  const headerList = head.slice(1).map((line): [string, string] => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]);
  const headers: Record<string, string> = {};
  for (const [k, v] of headerList) headers[k.toLowerCase()] = v;
  return { status: Number(code), statusText: text.join(' '), headers, headerList, body: end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4), raw, closed: true };
}

/** Raw upload headers for a whole file of `length` bytes (not resumable). */
export function fileHeaders(id: string | null, length: number, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="p.bin"'],
    ['Content-Length', String(length)],
    ...(id === null ? [] : ([['X-Progress-ID', id]] as Array<[string, string]>)),
    ...extra,
  ];
}

/** Headers of one resumable segment. */
export function segmentHeaders(session: string, id: string, start: number, end: number, total: number): Array<[string, string]> {
  return [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="s.bin"'],
    ['X-Content-Range', `bytes ${start}-${end}/${total}`],
    ['Session-ID', session],
    ['X-Progress-ID', id],
    ['Content-Length', String(end - start + 1)],
  ];
}

export interface SseEvent {
  id?: string;
  data: string;
  at: number;
}

/** An EventSource-like client over node:http: every event with its arrival time. */
export class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private req!: http.ClientRequest;
  private buffer = '';
  readonly done: Promise<void>;
  readonly opened: Promise<void>;

  constructor(port: number, target: string, headers: Record<string, string> = {}) {
    let resolveOpened!: () => void;
    this.opened = new Promise((r) => (resolveOpened = r));
    this.done = new Promise((resolve) => {
      this.req = http.get({ host: '127.0.0.1', port, path: target, headers: { Accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        resolveOpened();
        res.setEncoding('utf8');
        res.on('data', (text: string) => this.take(text));
        res.on('end', () => {
          this.ended = true;
          resolve();
        });
        res.on('close', () => resolve());
      });
      this.req.on('error', () => {
        resolveOpened();
        resolve();
      });
    });
  }

  private take(text: string): void {
    this.buffer += text;
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end < 0) return;
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data: string[] = [];
      let id: string | undefined;
      for (const line of block.split('\n')) {
        if (line.startsWith('data: ')) data.push(line.slice(6));
        else if (line.startsWith('id: ')) id = line.slice(4);
      }
      if (data.length > 0) this.events.push({ id, data: data.join('\n'), at: Date.now() });
    }
  }

  /** Parsed JSON of every event. */
  get states(): Array<{ state: string; received: number; total: number | null; percent: number | null; bytesPerSecond: number; etaSeconds: number | null; ranges: Array<{ start: number; end: number }>; status: number; id: string }> {
    return this.events.map((e) => JSON.parse(e.data));
  }

  close(): void {
    this.req.destroy();
  }
}
