/**
 * Behind stock nginx: a real nginx (Debian package, single process, own prefix and temp dirs)
 * runs the shipped examples/nginx/upload-gateway.conf as a plain reverse proxy
 * (`proxy_request_buffering off`, no upload module) in front of an in-process gateway, and every
 * request below goes through nginx's port.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { hashedRelativePath } from '../src/protocol/hash-path';
import { parseSize } from '../src/config/units';
import { httpRequest, rawRequest, segmentRequest, startTestGateway, type BackendCall, type RawResponse, type TestGateway } from './helpers/gateway';
import { NGINX_EXAMPLE, startNginx, type NginxProcess } from './helpers/nginx';

const MiB = 1024 * 1024;

let gw: TestGateway;
let nginx: NginxProcess;

beforeAll(async () => {
  gw = await startTestGateway();
  // Throws (failing every test) when nginx is not installed: never skipped.
  nginx = await startNginx(gw.port);
}, 20_000);

// Runs after a failed beforeAll too.
afterAll(async () => {
  await nginx?.stop();
  await gw?.close();
});

function digests(data: Buffer): { md5: string; sha256: string } {
  return {
    md5: createHash('md5').update(data).digest('hex'),
    sha256: createHash('sha256').update(data).digest('hex'),
  };
}

/** Sends raw request bytes to nginx (not to the gateway). */
function viaNginx(data: Buffer): Promise<RawResponse> {
  return rawRequest(nginx.port, data, { idleMs: 10_000 });
}

/** Adds nginx's output to a failing expectation's context. */
function describeResponse(res: RawResponse): string {
  return `${res.status} ${res.statusText}\n${res.headerList.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${res.body.toString('latin1').slice(0, 500)}\n--- nginx ---\n${nginx.output().slice(-2000)}`;
}

function expectStatus(res: RawResponse, status: number): void {
  if (res.status !== status) throw new Error(`expected ${status}, got ${describeResponse(res)}`);
}

/** The backend calls made since `before`. */
function callsSince(before: number): BackendCall[] {
  return gw.backend.calls.slice(before);
}

function sessionFile(id: string): string {
  return path.join(gw.store, hashedRelativePath(id, [1]));
}

/** The hand-off of a completed upload: one call whose fields describe `data`, and the stored file is `data`. */
function expectHandoff(call: BackendCall, data: Buffer, sessionId: string): void {
  const field = (name: string) => gw.backend.field(call, name);
  const { md5, sha256 } = digests(data);
  expect(call.method).toBe('POST');
  expect(field('size')).toBe(String(data.length));
  expect(field('md5')).toBe(md5);
  expect(field('sha256')).toBe(sha256);
  expect(field('name')).toBe('big.bin');
  const stored = field('path')!;
  expect(stored).toBe(sessionFile(sessionId));
  expect(readFileSync(stored).equals(data)).toBe(true);
  // The client's headers went through nginx and the gateway to the backend unchanged.
  const headers = new Map<string, string>();
  for (let i = 0; i < call.rawHeaders.length; i += 2) headers.set(call.rawHeaders[i].toLowerCase(), call.rawHeaders[i + 1]);
  expect(headers.get('session-id')).toBe(sessionId);
  expect(headers.get('content-disposition')).toBe('attachment; filename="big.bin"');
  expect(headers.get('x-forwarded-for')).toBe('127.0.0.1');
}

test('the test config is the shipped example with only ports and paths substituted', () => {
  const config = readFileSync(nginx.configFile, 'utf8');
  const example = readFileSync(NGINX_EXAMPLE, 'utf8');
  expect(config).toContain('proxy_request_buffering off;');
  // No upload module: no load_module, no upload_* directive.
  expect(config).not.toMatch(/^\s*(upload_\w+|load_module)\b/m);
  // Every non-substituted line of the example is in the running config verbatim.
  const substituted = /listen 80;|server 127\.0\.0\.1:8080|\/var\/log\/nginx\//;
  for (const line of example.split('\n')) if (!substituted.test(line)) expect(config).toContain(line);
  // client_max_body_size in the example matches the gateway's.
  const limit = /^\s*client_max_body_size\s+(\S+);/m.exec(example)?.[1];
  expect(parseSize(limit!)).toBe(gw.gateway.config.clientMaxBodySize);
});

test('(a) a 3-segment resumable upload, out of order, through nginx', async () => {
  const data = randomBytes(5 * MiB);
  const total = data.length;
  const id = `nginx-a-${randomBytes(4).toString('hex')}`;
  const segments: Array<[number, number]> = [
    [3 * MiB, total - 1],
    [0, 2 * MiB - 1],
    [2 * MiB, 3 * MiB - 1],
  ];
  const before = gw.backend.calls.length;

  const send = ([start, end]: [number, number]) => viaNginx(segmentRequest(id, start, end, total, data.subarray(start, end + 1)));

  const first = await send(segments[0]);
  expectStatus(first, 201);
  expect(first.headers.range).toBe(`${3 * MiB}-${total - 1}/${total}`);
  expect(first.body.toString('latin1')).toBe(`${3 * MiB}-${total - 1}/${total}`);

  const second = await send(segments[1]);
  expectStatus(second, 201);
  expect(second.headers.range).toBe(`0-${2 * MiB - 1}/${total},${3 * MiB}-${total - 1}/${total}`);
  expect(second.body.toString('latin1')).toBe(`0-${2 * MiB - 1}/${total},${3 * MiB}-${total - 1}/${total}`);
  expect(callsSince(before)).toHaveLength(0);

  const last = await send(segments[2]);
  expectStatus(last, 200);
  expect(last.body.toString('latin1')).toBe('backend 200\n');
  expect(last.headers['x-capture-id']).toBeDefined();

  const calls = callsSince(before);
  expect(calls).toHaveLength(1);
  expectHandoff(calls[0], data, id);
});

test('(b) an 8 MiB segment is streamed to the gateway while the client is still sending', async () => {
  const data = randomBytes(8 * MiB);
  const id = `nginx-b-${randomBytes(4).toString('hex')}`;
  const file = sessionFile(id);
  const before = gw.backend.calls.length;
  const held = 7 * MiB;

  const response = await new Promise<{ status: number; body: string; streamed: number }>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: nginx.port, method: 'POST', path: '/upload', agent: false,
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Disposition': 'attachment; filename="big.bin"',
        'Content-Range': `bytes 0-${data.length - 1}/${data.length}`,
        'Session-ID': id,
        'Content-Length': String(data.length),
      },
    });
    let streamed = 0;
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('latin1'), streamed }));
    });
    req.write(data.subarray(0, held));
    // With proxy_request_buffering off the gateway writes bytes before the request is complete;
    // a buffering proxy would not even have connected to it yet.
    const deadline = Date.now() + 10_000;
    const poll = setInterval(() => {
      const size = existsSync(file) ? statSync(file).size : 0;
      if (size >= MiB || Date.now() > deadline) {
        clearInterval(poll);
        streamed = size;
        req.end(data.subarray(held));
      }
    }, 20);
  });

  expect(response.streamed).toBeGreaterThanOrEqual(MiB);
  expect(response.status).toBe(200);
  expect(response.body).toBe('backend 200\n');
  const calls = callsSince(before);
  expect(calls).toHaveLength(1);
  expectHandoff(calls[0], data, id);
});

test('(c) a status query through nginx answers 200 with the Range header', async () => {
  const id = `nginx-c-${randomBytes(4).toString('hex')}`;
  const total = 1000;
  const part = randomBytes(100);
  expectStatus(await viaNginx(segmentRequest(id, 0, 99, total, part)), 201);
  expectStatus(await viaNginx(segmentRequest(id, 500, 599, total, part)), 201);

  const res = await viaNginx(httpRequest('GET', '/upload', [['Session-ID', id]]));
  expectStatus(res, 200);
  expect(res.headers.range).toBe('0-99/1000,500-599/1000');
  expect(res.body.toString('latin1')).toBe('0-99/1000,500-599/1000');
  expect(res.headers['x-upload-state']).toBe('incomplete');
  expect(res.headers['x-upload-total']).toBe('1000');

  // X-Session-ID works as well, and an unknown session is the gateway's 404.
  const alt = await viaNginx(httpRequest('GET', '/upload', [['X-Session-ID', id]]));
  expect(alt.headers.range).toBe('0-99/1000,500-599/1000');
  const unknown = await viaNginx(httpRequest('GET', '/upload', [['Session-ID', `${id}-nope`]]));
  expectStatus(unknown, 404);
  expect(unknown.headers['content-type']).toBe('text/plain; charset=utf-8');
});

test('(d) a request over client_max_body_size is refused by nginx with 413', async () => {
  const limit = gw.gateway.config.clientMaxBodySize;
  const before = gw.backend.calls.length;
  const head = httpRequest('POST', '/upload', [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="big.bin"'],
    ['Content-Length', String(limit + 1)],
    ['Session-ID', 'nginx-d'],
    ['X-Content-Range', `bytes 0-${limit}/${limit + 1}`],
  ]);
  // Half-closed: nginx's lingering close ends at our FIN instead of after lingering_timeout.
  const res = await rawRequest(nginx.port, Buffer.concat([head, randomBytes(64 * 1024)]), { halfClose: true, idleMs: 10_000 });
  expectStatus(res, 413);
  // nginx's own HTML page, not the gateway's text/plain reason.
  expect(res.headers['content-type']).toBe('text/html');
  expect(res.body.toString('latin1')).toContain('413 Request Entity Too Large');
  expect(res.body.toString('latin1')).toContain('<center>nginx');
  expect(existsSync(sessionFile('nginx-d'))).toBe(false);
  expect(callsSince(before)).toHaveLength(0);
});

test('(e) a malformed Content-Range gets the gateway\'s 400 one-line text/plain reason', async () => {
  const id = `nginx-e-${randomBytes(4).toString('hex')}`;
  const res = await viaNginx(httpRequest('POST', '/upload', [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="big.bin"'],
    ['Content-Range', 'bytes 9-5/10'],
    ['Session-ID', id],
  ], 'abcde'));
  expectStatus(res, 400);
  expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
  const body = res.body.toString('utf8');
  expect(body).toBe('invalid Content-Range "bytes 9-5/10": end before start\n');
  expect(existsSync(sessionFile(id))).toBe(false);
});

test('(f) parallel non-overlapping segments of one session: one hand-off', async () => {
  const data = randomBytes(4 * MiB);
  const total = data.length;
  const id = `nginx-f-${randomBytes(4).toString('hex')}`;
  const before = gw.backend.calls.length;
  const size = MiB;
  const starts = [0, 1, 2, 3].map((k) => k * size);

  const answers = await Promise.all(starts.map((start) => viaNginx(segmentRequest(id, start, start + size - 1, total, data.subarray(start, start + size)))));
  for (const res of answers) if (res.status !== 200 && res.status !== 201) throw new Error(`unexpected ${describeResponse(res)}`);
  expect(answers.map((r) => r.status).sort()).toEqual([200, 201, 201, 201]);
  for (const res of answers.filter((r) => r.status === 201)) {
    expect(res.headers.range).toMatch(new RegExp(`^\\d+-\\d+/${total}(,\\d+-\\d+/${total})*$`));
    expect(res.body.toString('latin1')).toBe(res.headers.range);
  }
  expect(answers.find((r) => r.status === 200)!.body.toString('latin1')).toBe('backend 200\n');

  const calls = callsSince(before);
  expect(calls).toHaveLength(1);
  expectHandoff(calls[0], data, id);

  const status = await viaNginx(httpRequest('GET', '/upload', [['Session-ID', id]]));
  expectStatus(status, 200);
  expect(status.headers.range).toBe(`0-${total - 1}/${total}`);
  expect(status.headers['x-upload-state']).toBe('complete');
});
