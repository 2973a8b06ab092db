/**
 * The resumable (raw) protocol end to end over real sockets (spec §3, §5, §6, §8, §11.1–§11.2):
 * segments and 201 answers, the range list and its truncation, the hand-off to the backend byte
 * for byte, the relayed answer, upload_cleanup, upload_add_header, unranged raw uploads, size and
 * rate limits, and the expiry of idle sessions.
 */
import * as http from 'node:http';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import {
  CaptureBackend,
  DEFAULT_LOCATION,
  httpRequest,
  rawRequest,
  segmentRequest,
  startTestGateway,
  type BackendCall,
  type RawResponse,
  type TestGateway,
  sleep,
  listFiles,
  dataPath,
  query,
  send,
  lastCall,
  sid as uniqueSid,
} from './helpers/gateway';

// ---------------------------------------------------------------------------------------------
// Local helpers

const sid = (prefix = 'r'): string => uniqueSid(prefix);

function hex(algorithm: string, data: Buffer | string): string {
  return createHash(algorithm).update(data).digest('hex');
}

function crc32(data: Buffer | string): string {
  return zlib.crc32(data).toString(16).padStart(8, '0');
}

/** The module's generated form (§4.6), built independently of the gateway's code. */
function expectedForm(boundary: string, fields: Array<[string, string]>): Buffer {
  let body = '';
  fields.forEach(([name, value], i) => {
    body += `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}`;
  });
  return Buffer.from(`${body}\r\n--${boundary}--\r\n`, 'latin1');
}

/** The Q7 rule (§3.10): entries are appended while the text so far is shorter than `limit`. */
function truncatedList(entries: string[], limit: number): string {
  let out = '';
  for (const [i, entry] of entries.entries()) {
    if (out.length >= limit) break;
    out += (i === 0 ? '' : ',') + entry;
  }
  return out;
}

function headerPairs(call: BackendCall): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < call.rawHeaders.length; i += 2) out.push([call.rawHeaders[i], call.rawHeaders[i + 1]]);
  return out;
}

function withLocation(replacements: Array<[string | RegExp, string]>, extra = ''): string {
  let body = DEFAULT_LOCATION;
  for (const [from, to] of replacements) {
    if (typeof from === 'string' ? !body.includes(from) : !from.test(body)) throw new Error(`location template has no ${String(from)}`);
    body = body.replace(from, to);
  }
  return `${body}\n${extra}`;
}

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.close();
});

// ---------------------------------------------------------------------------------------------

describe('segments and the 201 answer (§3.9, §3.10, §11.1)', () => {
  test('three segments in order: 201, 201, then the backend\'s answer', async () => {
    const id = sid('inorder');
    const data = 'abcdefghijkl';
    const r1 = await send(gw, segmentRequest(id, 0, 3, 12, data.slice(0, 4)));
    const r2 = await send(gw, segmentRequest(id, 4, 7, 12, data.slice(4, 8)));
    const calls = gw.backend.calls.length;
    const r3 = await send(gw, segmentRequest(id, 8, 11, 12, data.slice(8)));
    expect([r1.status, r1.body.toString()]).toEqual([201, '0-3/12']);
    expect([r2.status, r2.body.toString()]).toEqual([201, '0-7/12']);
    expect([r3.status, r3.body.toString()]).toEqual([200, 'backend 200\n']);
    expect(gw.backend.calls.length).toBe(calls + 1);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe(data);
  });

  test('three segments out of order (the transcript of §11.1/§11.2)', async () => {
    const id = sid('ooo');
    const r1 = await send(gw, segmentRequest(id, 0, 4, 12, 'hello'));
    expect([r1.status, r1.headers.range, r1.body.toString()]).toEqual([201, '0-4/12', '0-4/12']);
    const r2 = await send(gw, segmentRequest(id, 9, 11, 12, '!!!'));
    expect([r2.status, r2.headers.range, r2.body.toString()]).toEqual([201, '0-4/12,9-11/12', '0-4/12,9-11/12']);
    expect(r2.headers['content-length']).toBe('14');
    // The hole reads as zero bytes until it is filled.
    expect(readFileSync(dataPath(gw, id)).equals(Buffer.from('hello\0\0\0\0!!!'))).toBe(true);
    const r3 = await send(gw, segmentRequest(id, 5, 8, 12, ' wor'));
    expect(r3.status).toBe(200);
    const call = lastCall(gw);
    expect(gw.backend.field(call, 'range')).toBe('bytes 5-8/12');
    expect(gw.backend.field(call, 'size')).toBe('12');
    expect(gw.backend.field(call, 'md5')).toBe(hex('md5', 'hello wor!!!'));
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello wor!!!');
  });

  test('the 201 format: Range header = body, no Content-Type, no trailing newline', async () => {
    const id = sid('fmt');
    const res = await send(gw, segmentRequest(id, 3, 5, 100, 'abc'));
    expect(res.status).toBe(201);
    expect(res.statusText).toBe('Created');
    expect(res.headers.range).toBe('3-5/100');
    expect(res.body.toString('latin1')).toBe('3-5/100');
    expect(res.headers['content-length']).toBe('7');
    expect(res.headers['content-type']).toBeUndefined();
    // Exactly the body after the header block: no newline, nothing else.
    expect(res.raw.subarray(res.raw.indexOf('\r\n\r\n') + 4).toString('latin1')).toBe('3-5/100');
  });

  test('adjacent and overlapping ranges merge (§3.9)', async () => {
    const id = sid('merge');
    const file = 'ABCDEFGHIJKLMNOPQRST';
    const seg = async (s: number, e: number) => (await send(gw, segmentRequest(id, s, e, 20, file.slice(s, e + 1)))).body.toString();
    expect(await seg(0, 1)).toBe('0-1/20');
    expect(await seg(2, 3)).toBe('0-3/20');
    expect(await seg(3, 6)).toBe('0-6/20');
    expect(await seg(2, 8)).toBe('0-8/20');
    expect(await seg(18, 19)).toBe('0-8/20,18-19/20');
    expect(await seg(12, 13)).toBe('0-8/20,12-13/20,18-19/20');
    expect(await seg(10, 10)).toBe('0-8/20,10-10/20,12-13/20,18-19/20');
    // A segment bridging three ranges.
    expect(await seg(9, 14)).toBe('0-14/20,18-19/20');
    expect(await seg(15, 17)).toBe('backend 200\n');
    expect(readFileSync(dataPath(gw, id)).toString()).toBe(file);
  });

  test('single-byte ranges (s-s/t) are accepted and complete correctly', async () => {
    const id = sid('one');
    expect((await send(gw, segmentRequest(id, 0, 0, 3, 'a'))).body.toString()).toBe('0-0/3');
    expect((await send(gw, segmentRequest(id, 2, 2, 3, 'c'))).body.toString()).toBe('0-0/3,2-2/3');
    expect((await send(gw, segmentRequest(id, 1, 1, 3, 'b'))).status).toBe(200);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('abc');
  });

  test('the Q7 truncation rule with many gaps', async () => {
    const id = sid('q7');
    const total = 100000;
    const entries: string[] = [];
    let res: RawResponse | undefined;
    for (let k = 0; k < 40; k++) {
      const start = k * 1000 + 7;
      res = await send(gw, segmentRequest(id, start, start + 1, total, 'xy'));
      entries.push(`${start}-${start + 1}/${total}`);
      const expected = truncatedList(entries, 256);
      expect([k, res.headers.range, res.body.toString()]).toEqual([k, expected, expected]);
    }
    const text = res!.body.toString();
    expect(text.length).toBeGreaterThanOrEqual(256);
    expect(text.length).toBeLessThan(256 + 20);
    expect(entries.join(',').startsWith(text)).toBe(true);
  });

  test('upload_range_header_buffer_size sets the truncation point', async () => {
    const own = await startTestGateway({ locationBody: withLocation([], 'upload_range_header_buffer_size 20;') });
    try {
      const id = sid('q7b');
      const entries: string[] = [];
      for (const start of [0, 10, 20, 30, 40]) {
        const res = await send(own, segmentRequest(id, start, start, 50, 'z'));
        entries.push(`${start}-${start}/50`);
        expect(res.body.toString()).toBe(truncatedList(entries, 20));
        expect(res.headers.range).toBe(truncatedList(entries, 20));
      }
      expect(truncatedList(entries, 20)).toBe('0-0/50,10-10/50,20-20/50');
    } finally {
      await own.close();
    }
  });
});

describe('upload_range_header_buffer_size 0 (§3.10 [S])', () => {
  test('a 201 without Range and with an empty body', async () => {
    const own = await startTestGateway({ locationBody: withLocation([], 'upload_range_header_buffer_size 0;') });
    try {
      const res = await send(own, segmentRequest(sid('q0'), 0, 4, 10, 'hello'));
      expect(res.status).toBe(201);
      expect(res.headers.range).toBeUndefined();
      expect(res.headers['content-length']).toBe('0');
      expect(res.body.length).toBe(0);
    } finally {
      await own.close();
    }
  });
});

describe('the hand-off to the backend (§5, §11.2)', () => {
  test('method, headers in order with Content-Type replaced in place, excluded headers, exact body', async () => {
    const id = sid('handoff');
    expect((await send(gw, segmentRequest(id, 0, 4, 12, 'hello'))).status).toBe(201);
    expect((await send(gw, segmentRequest(id, 9, 11, 12, '!!!'))).status).toBe(201);
    const request = httpRequest('POST', '/upload?id=5', [
      ['User-Agent', 'test/1.0'],
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="big.TXT"'],
      ['X-Content-Range', `bytes 5-8/12`],
      ['Keep-Alive', 'timeout=5'],
      ['Session-ID', id],
      ['TE', 'trailers'],
      ['X-Custom', 'one'],
      ['x-custom', 'two'],
      ['Content-Length', '4'],
      ['Connection', 'close'],
    ], ' wor');
    const res = await send(gw, request);
    expect(res.status).toBe(200);
    const call = lastCall(gw);
    expect(call.method).toBe('POST');
    expect(call.url).toBe('/upload?id=5');
    const headers = headerPairs(call);
    const contentType = headers.find(([k]) => k.toLowerCase() === 'content-type')![1];
    const boundary = /^multipart\/form-data; boundary=(\d{20})$/.exec(contentType)![1];
    expect(headers).toEqual([
      ['Host', `127.0.0.1:${gw.backend.port}`],
      ['Connection', 'close'],
      ['Content-Length', String(call.body.length)],
      ['User-Agent', 'test/1.0'],
      ['Content-Type', `multipart/form-data; boundary=${boundary}`],
      ['Content-Disposition', 'attachment; filename="big.TXT"'],
      ['X-Content-Range', 'bytes 5-8/12'],
      ['Session-ID', id],
      ['X-Custom', 'one'],
      ['x-custom', 'two'],
    ]);
    const file = Buffer.from('hello wor!!!');
    expect(call.body.equals(expectedForm(boundary, [
      ['name', 'big.TXT'],
      ['content_type', 'application/octet-stream'],
      ['path', dataPath(gw, id)],
      ['field', ''],
      ['range', 'bytes 5-8/12'],
      ['number', '1'],
      ['md5', hex('md5', file)],
      ['sha1', hex('sha1', file)],
      ['sha256', hex('sha256', file)],
      ['crc32', crc32(file)],
      ['size', '12'],
    ]))).toBe(true);
  });

  test('a chunked final segment with Expect: 100-continue: framing headers are not forwarded', async () => {
    const id = sid('te');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const chunkedBody = '3\r\nwor\r\n2\r\nld\r\n0\r\n\r\n';
    const res = await send(gw, segmentRequest(id, 5, 9, 10, chunkedBody, [['Transfer-Encoding', 'chunked'], ['Expect', '100-continue'], ['X-After', 'kept']]));
    expect(res.status).toBe(200);
    expect(res.raw.toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\n')).toBe(true);
    const call = lastCall(gw);
    const names = headerPairs(call).map(([k]) => k.toLowerCase());
    expect(names).not.toContain('transfer-encoding');
    expect(names).not.toContain('expect');
    expect(names.filter((n) => n === 'content-length')).toHaveLength(1);
    expect(headerPairs(call).find(([k]) => k === 'Content-Length')![1]).toBe(String(call.body.length));
    expect(names[names.length - 1]).toBe('x-after');
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('helloworld');
  });

  test('each raw request takes a new 20-digit boundary number', async () => {
    const numbers: number[] = [];
    for (let k = 0; k < 3; k++) {
      expect((await send(gw, segmentRequest(sid('bnd'), 0, 1, 2, 'ok'))).status).toBe(200);
      numbers.push(Number(/boundary=(\d{20})$/.exec(lastCall(gw).rawHeaders[lastCall(gw).rawHeaders.findIndex((h) => h === 'Content-Type') + 1])![1]));
    }
    expect(numbers[1]).toBeGreaterThan(numbers[0]);
    expect(numbers[2]).toBeGreaterThan(numbers[1]);
  });

  test('a location without set/aggregate fields sends the dummy field', async () => {
    const own = await startTestGateway({ locationBody: 'upload_pass http://__BACKEND__;\nupload_resumable on;\nupload_store __STORE__ 1;\nupload_state_store __STATE__;' });
    try {
      expect((await send(own, segmentRequest(sid('dummy'), 0, 1, 2, 'ok'))).status).toBe(200);
      const call = own.backend.calls[0];
      const boundary = /boundary=(\d{20})$/.exec(headerPairs(call).find(([k]) => k === 'Content-Type')![1])![1];
      expect(call.body.toString('latin1')).toBe(`--${boundary}\r\nContent-Disposition: form-data; name="<ngx_upload_module_dummy>"\r\n\r\n\r\n--${boundary}--\r\n`);
    } finally {
      await own.close();
    }
  });

  describe('request-target rules for upload_pass and upload_pass_args (§5.1)', () => {
    let backend: CaptureBackend;
    beforeAll(async () => {
      backend = await new CaptureBackend().start();
    });
    afterAll(async () => {
      await backend?.stop();
    });

    const cases: Array<[string, () => { pass: string; args: 'on' | 'off'; topLevel?: string }, string]> = [
      ['URL without a path, args on', () => ({ pass: `http://127.0.0.1:${backend.port}`, args: 'on' }), '/upload/sub?x=1&y=2'],
      ['URL without a path, args off (the client target is forwarded anyway)', () => ({ pass: `http://127.0.0.1:${backend.port}`, args: 'off' }), '/upload/sub?x=1&y=2'],
      ['URL with a path, args on', () => ({ pass: `http://127.0.0.1:${backend.port}/internal/`, args: 'on' }), '/internal/?x=1&y=2'],
      ['URL with a path, args off', () => ({ pass: `http://127.0.0.1:${backend.port}/internal/`, args: 'off' }), '/internal/'],
      ['named location, args off', () => ({
        pass: '@backend', args: 'off', topLevel: `location @backend {\n  proxy_pass http://127.0.0.1:${backend.port};\n}`,
      }), '/upload/sub?x=1&y=2'],
      ['named location, args on', () => ({
        pass: '@backend', args: 'on', topLevel: `location @backend {\n  proxy_pass http://127.0.0.1:${backend.port};\n}`,
      }), '/upload/sub?x=1&y=2'],
      ['/uri through a proxy location, args on', () => ({
        pass: '/internal/', args: 'on', topLevel: `location /internal/ {\n  proxy_pass http://127.0.0.1:${backend.port};\n}`,
      }), '/internal/?x=1&y=2'],
      ['/uri through a proxy location, args off', () => ({
        pass: '/internal/', args: 'off', topLevel: `location /internal/ {\n  proxy_pass http://127.0.0.1:${backend.port};\n}`,
      }), '/internal/'],
      ['/uri through a proxy location whose proxy_pass has a URI', () => ({
        pass: '/internal/x', args: 'on', topLevel: `location /internal/ {\n  proxy_pass http://127.0.0.1:${backend.port}/b/;\n}`,
      }), '/b/x?x=1&y=2'],
    ];

    test.each(cases)('%s', async (_label, make, expectedTarget) => {
      const { pass, args, topLevel } = make();
      const own = await startTestGateway({
        topLevel,
        locationBody: withLocation([['upload_pass http://__BACKEND__;', `upload_pass ${pass};`], ['upload_pass_args on;', `upload_pass_args ${args};`]]),
      });
      try {
        const calls = backend.calls.length;
        const res = await send(own, segmentRequest(sid('tgt'), 0, 1, 2, 'ok', [], '/upload/sub?x=1&y=2'));
        expect(res.status).toBe(200);
        expect(backend.calls.length).toBe(calls + 1);
        const call = backend.calls[backend.calls.length - 1];
        expect(call.method).toBe('POST');
        expect(call.url).toBe(expectedTarget);
        expect(headerPairs(call)[0]).toEqual(['Host', `127.0.0.1:${backend.port}`]);
      } finally {
        await own.close();
      }
    });
  });
});

describe('the backend\'s answer is relayed as is (§5.4)', () => {
  let server: http.Server;
  let port = 0;
  let own: TestGateway;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('Content-Type', 'text/plain');
        res.setHeader('X-Backend', 'yes');
        res.setHeader('Set-Cookie', ['a=1', 'b=2']);
        res.writeHead(200, 'X');
        res.end('echo body');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    own = await startTestGateway({
      locationBody: withLocation([['upload_pass http://__BACKEND__;', `upload_pass http://127.0.0.1:${port};`]], 'upload_add_header X-Static yes;'),
    });
  });
  afterAll(async () => {
    await own?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('status, reason phrase, headers and body; upload_add_header first', async () => {
    const res = await send(own, segmentRequest(sid('relay'), 0, 1, 2, 'ok'));
    expect(res.status).toBe(200);
    expect(res.statusText).toBe('X');
    expect(res.body.toString()).toBe('echo body');
    expect(res.headers['x-backend']).toBe('yes');
    expect(res.headers['content-type']).toBe('text/plain');
    expect(res.headerList.filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
    const names = res.headerList.map(([k]) => k.toLowerCase());
    expect(names.indexOf('x-static')).toBeGreaterThanOrEqual(0);
    expect(names.indexOf('x-static')).toBeLessThan(names.indexOf('x-backend'));
  });

  test('a replayed answer (D7) is the same', async () => {
    const id = sid('relay2');
    const first = await send(own, segmentRequest(id, 0, 1, 2, 'ok'));
    const again = await send(own, segmentRequest(id, 0, 1, 2, 'ok'));
    expect([again.status, again.statusText, again.body.toString()]).toEqual([first.status, first.statusText, first.body.toString()]);
    expect(again.headerList.filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
    expect(again.headers['x-backend']).toBe('yes');
  });
});

describe('upload_cleanup by the backend\'s status (§6, §3.13)', () => {
  const complete = async (target: string) => {
    const id = sid('clean');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const res = await send(gw, segmentRequest(id, 5, 9, 10, 'world', [], target));
    return { id, res };
  };

  test.each([
    [500, false],
    [404, false],
    [503, false],
    [403, true],
    [200, true],
  ])('backend %i → data file kept: %s', async (status, kept) => {
    const { id, res } = await complete(`/upload?status=${status}`);
    expect(res.status).toBe(status);
    expect(res.body.toString()).toBe(`backend ${status}\n`);
    expect(existsSync(dataPath(gw, id))).toBe(kept);
    // The state is the completion record, whatever happened to the file.
    const calls = gw.backend.calls.length;
    const again = await send(gw, segmentRequest(id, 5, 9, 10, 'world', [], `/upload?status=${status}`));
    expect(again.status).toBe(status);
    expect(gw.backend.calls.length).toBe(calls);
  });

  test('upload_cleanup accepts 200–599 (Q25): 200 in the list deletes after a 200', async () => {
    const own = await startTestGateway({ locationBody: withLocation([['upload_cleanup 400 404 499 500-505;', 'upload_cleanup 200 0500;']]) });
    try {
      const id = sid('c200');
      expect((await send(own, segmentRequest(id, 0, 4, 5, 'hello'))).status).toBe(200);
      expect(existsSync(dataPath(own, id))).toBe(false);
      const id2 = sid('c201');
      // A non-final segment is never removed by cleanup (D8: acknowledged bytes stay).
      expect((await send(own, segmentRequest(id2, 0, 4, 10, 'hello'))).status).toBe(201);
      expect(existsSync(dataPath(own, id2))).toBe(true);
      const id3 = sid('c500');
      expect((await send(own, segmentRequest(id3, 0, 4, 5, 'hello', [], '/upload?status=500'))).status).toBe(500);
      expect(existsSync(dataPath(own, id3))).toBe(false);
    } finally {
      await own.close();
    }
  });
});

describe('upload_add_header on 201, relayed answers and OPTIONS (§8)', () => {
  let own: TestGateway;
  beforeAll(async () => {
    own = await startTestGateway({
      locationBody: withLocation([], 'upload_add_header X-Static yes;\nupload_add_header X-Upload-Filename "$upload_file_name";\nupload_add_header Access-Control-Allow-Origin "*";'),
    });
  });
  afterAll(async () => {
    await own?.close();
  });

  test('on a 201, before Range', async () => {
    const res = await send(own, segmentRequest(sid('ah'), 0, 4, 10, 'hello'));
    expect(res.status).toBe(201);
    const names = res.headerList.map(([k]) => k);
    expect(res.headers['x-static']).toBe('yes');
    expect(res.headers['x-upload-filename']).toBe('big.bin');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(names.indexOf('X-Static')).toBeLessThan(names.indexOf('X-Upload-Filename'));
    expect(names.indexOf('X-Upload-Filename')).toBeLessThan(names.indexOf('Range'));
  });

  test('on the relayed completion answer', async () => {
    const res = await send(own, segmentRequest(sid('ah'), 0, 1, 2, 'ok'));
    expect(res.status).toBe(200);
    expect(res.headers['x-static']).toBe('yes');
    expect(res.headers['x-upload-filename']).toBe('big.bin');
  });

  test('on OPTIONS: 200, empty, no Content-Type; upload variables evaluate empty and are skipped', async () => {
    const res = await rawRequest(own.port, httpRequest('OPTIONS', '/upload', []));
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.body.length).toBe(0);
    expect(res.headerList.filter(([k]) => k === 'X-Static')).toEqual([['X-Static', 'yes']]);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['x-upload-filename']).toBeUndefined();
  });
});

describe('unranged raw uploads (§3.6, §4.7)', () => {
  test('no Session-ID: a 10-digit temporary name, real hashes, size', async () => {
    const body = randomBytes(5000);
    const names: string[] = [];
    for (let k = 0; k < 2; k++) {
      const res = await send(gw, httpRequest('POST', '/upload', [
        ['Content-Type', 'text/plain; charset=utf-8'],
        ['Content-Disposition', 'form-data; name="up"; filename="C:\\tmp\\whole.txt"'],
      ], body));
      expect(res.status).toBe(200);
      const call = lastCall(gw);
      const file = gw.backend.field(call, 'path')!;
      const name = path.basename(file);
      expect(name).toMatch(/^\d{10}$/);
      // upload_store <store> 1: the hash directory is the last digit.
      expect(path.dirname(file)).toBe(path.join(gw.store, name.slice(-1)));
      expect(readFileSync(file).equals(body)).toBe(true);
      expect(gw.backend.field(call, 'name')).toBe('whole.txt');
      expect(gw.backend.field(call, 'field')).toBe('up');
      expect(gw.backend.field(call, 'content_type')).toBe('text/plain; charset=utf-8');
      expect(gw.backend.field(call, 'number')).toBe('1');
      // Q29: $upload_content_range outside ranged mode, in a set-field.
      expect(gw.backend.field(call, 'range')).toBe('bytes 0-0/0');
      expect(gw.backend.field(call, 'md5')).toBe(hex('md5', body));
      expect(gw.backend.field(call, 'sha1')).toBe(hex('sha1', body));
      expect(gw.backend.field(call, 'sha256')).toBe(hex('sha256', body));
      expect(gw.backend.field(call, 'crc32')).toBe(crc32(body));
      expect(gw.backend.field(call, 'size')).toBe('5000');
      names.push(name);
    }
    expect(Number(names[1])).toBeGreaterThan(Number(names[0]));
  });

  test('the observed hash values for "hello\\n" (§9)', async () => {
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="h.txt"'],
    ], 'hello\n'));
    expect(res.status).toBe(200);
    const call = lastCall(gw);
    expect(gw.backend.field(call, 'md5')).toBe('b1946ac92492d2347c6235b4d2611184');
    expect(gw.backend.field(call, 'sha1')).toBe('f572d396fae9206628714fb2ce00f72e94f2258f');
    expect(gw.backend.field(call, 'crc32')).toBe('363a3020');
  });

  test('with a Session-ID and no range: a single-shot upload into the session file', async () => {
    const id = sid('single');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="s.txt"'],
      ['Session-ID', id],
    ], 'single shot'));
    expect(res.status).toBe(200);
    expect(gw.backend.field(lastCall(gw), 'path')).toBe(dataPath(gw, id));
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('single shot');
    expect(gw.backend.field(lastCall(gw), 'md5')).toBe(hex('md5', 'single shot'));
  });

  test('an empty body → 400 (§2.4)', async () => {
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="e.txt"'],
    ], ''));
    expect(res.status).toBe(400);
    const ranged = await send(gw, segmentRequest(sid('empty'), 0, 4, 10, ''));
    expect(ranged.status).toBe(416);
  });
});

describe('upload_resumable off (§1)', () => {
  test('a raw (non-multipart) body → 415, nothing stored', async () => {
    const own = await startTestGateway({ locationBody: withLocation([['upload_resumable on;', 'upload_resumable off;']]) });
    try {
      const res = await send(own, segmentRequest(sid('off'), 0, 4, 10, 'hello'));
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(listFiles(own.store)).toEqual([]);
      expect(own.backend.calls).toHaveLength(0);
    } finally {
      await own.close();
    }
  });
});

describe('upload_max_file_size (§3.16)', () => {
  let own: TestGateway;
  beforeAll(async () => {
    own = await startTestGateway({ locationBody: withLocation([], 'upload_max_file_size 10;') });
  });
  afterAll(async () => {
    await own?.close();
  });

  test('ranged: a total over the limit → 413 at the header stage; the limit itself is fine', async () => {
    const id = sid('max');
    const res = await send(own, segmentRequest(id, 0, 4, 11, 'hello'));
    expect(res.status).toBe(413);
    expect(existsSync(dataPath(own, id))).toBe(false);
    expect((await send(own, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    expect((await send(own, segmentRequest(id, 5, 9, 10, 'world'))).status).toBe(200);
  });

  test('unranged: soft limit — the file is dropped and the empty form still goes to the backend', async () => {
    const before = listFiles(own.store);
    const calls = own.backend.calls.length;
    const res = await send(own, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="big.txt"'],
    ], '01234567890'));
    expect(res.status).toBe(200);
    expect(own.backend.calls.length).toBe(calls + 1);
    const call = lastCall(own);
    const boundary = /boundary=(\d{20})$/.exec(headerPairs(call).find(([k]) => k === 'Content-Type')![1])![1];
    expect(call.body.toString('latin1')).toBe(`\r\n--${boundary}--\r\n`);
    expect(listFiles(own.store)).toEqual(before);
  });

  test('unranged: a body of exactly the limit is accepted', async () => {
    const res = await send(own, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="ten.txt"'],
    ], '0123456789'));
    expect(res.status).toBe(200);
    expect(own.backend.field(lastCall(own), 'size')).toBe('10');
    expect(readFileSync(own.backend.field(lastCall(own), 'path')!).toString()).toBe('0123456789');
  });
});

describe('upload_limit_rate (§7)', () => {
  test('the body is throttled to R·(t+1) bytes by second t', async () => {
    const own = await startTestGateway({ locationBody: withLocation([], 'upload_limit_rate 20k;') });
    try {
      const body = randomBytes(40 * 1024);
      const started = Date.now();
      const res = await send(own, segmentRequest(sid('rate'), 0, body.length - 1, body.length, body));
      const elapsed = Date.now() - started;
      expect(res.status).toBe(200);
      // 40 KiB at 20 KiB/s: the second 20 KiB only once second 1 has started (a generous lower bound only).
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(own.backend.field(lastCall(own), 'md5')).toBe(hex('md5', body));
    } finally {
      await own.close();
    }
  });
});

describe('expiry of idle sessions (upload_session_timeout)', () => {
  test('an idle incomplete session loses its data and state; its id then starts afresh', async () => {
    const own = await startTestGateway({ locationBody: withLocation([], 'upload_session_timeout 1s;') });
    try {
      const id = sid('idle');
      const keep = sid('busy');
      expect((await send(own, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
      expect(existsSync(dataPath(own, id))).toBe(true);
      expect(listFiles(own.state).some((f) => path.basename(f).startsWith(`${id}.`))).toBe(true);
      await sleep(1100);
      expect((await send(own, segmentRequest(keep, 0, 4, 10, 'hello'))).status).toBe(201);
      // (The periodic sweep may have been first; then this one finds nothing left to do.)
      await own.gateway.sweepExpired();
      expect(existsSync(dataPath(own, id))).toBe(false);
      expect(listFiles(own.state).some((f) => path.basename(f).startsWith(`${id}.`))).toBe(false);
      expect((await query(own, id)).status).toBe(404);
      // The session that was active recently survives the sweep.
      expect((await query(own, keep)).headers.range).toBe('0-4/10');
      expect(existsSync(dataPath(own, keep))).toBe(true);
      // The expired id starts a new upload (even with another total).
      const res = await send(own, segmentRequest(id, 0, 2, 3, 'abc'));
      expect(res.status).toBe(200);
      expect(readFileSync(dataPath(own, id)).toString()).toBe('abc');
    } finally {
      await own.close();
    }
  });

  test('an expired session is not continued even before the sweep runs', async () => {
    const own = await startTestGateway({ locationBody: withLocation([], 'upload_session_timeout 1s;') });
    try {
      const id = sid('lazy');
      expect((await send(own, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
      await sleep(1200);
      expect((await query(own, id)).status).toBe(404);
      const res = await send(own, segmentRequest(id, 5, 9, 10, 'world'));
      expect(res.status).toBe(201);
      expect(res.body.toString()).toBe('5-9/10');
      expect(readFileSync(dataPath(own, id)).equals(Buffer.from('\0\0\0\0\0world'))).toBe(true);
    } finally {
      await own.close();
    }
  });
});
