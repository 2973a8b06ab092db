/**
 * HTTP-level edge cases of an upload location (spec §1 dispatch, §2.4 body framing, D1, D2, D14):
 * Expect: 100-continue, bare-LF heads, broken framing, methods, locations and
 * client_max_body_size. Every malformed request must get a definite status with a one-line
 * reason — never a hang, never a 500 — and must not touch acknowledged bytes.
 */
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import {
  DEFAULT_LOCATION,
  httpRequest,
  rawRequest,
  segmentRequest,
  startTestGateway,
  type TestGateway,
  parseAll,
  sleep,
  listFiles,
  dataPath,
  query,
  send,
  expectPlainError,
  type Answer,
  sid as uniqueSid,
} from './helpers/gateway';

// ---------------------------------------------------------------------------------------------
// Local helpers

interface Conversation {
  /** A `100 Continue` arrived before the body was sent. */
  continued: boolean;
  responses: Answer[];
  final: Answer | undefined;
  raw: Buffer;
  closed: boolean;
}

/**
 * Sends `head`, waits (up to `waitMs`) for a `100 Continue` or a final answer; sends `body` only
 * after a 100 (like curl), then reads until the server closes.
 */
function expectContinue(port: number, head: Buffer | string, body: Buffer | string, waitMs = 1500): Promise<Conversation> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let continued = false;
    let sentBody = false;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(overall);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      const responses = parseAll(raw);
      resolve({ continued, responses, final: responses.find((r) => r.status >= 200), raw, closed });
    };
    const overall = setTimeout(() => finish(false), 5000);
    const wait = setTimeout(() => {
      // No answer at all in time: send the body anyway (curl does after 1 s) and see what comes.
      if (!sentBody) {
        sentBody = true;
        socket.write(body);
      }
    }, waitMs);
    socket.on('connect', () => socket.write(head));
    socket.on('data', (c) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString('latin1');
      if (!sentBody && text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        continued = true;
        sentBody = true;
        clearTimeout(wait);
        socket.write(body);
      } else if (!sentBody && /^HTTP\/1\.1 [2-5]\d\d /.test(text)) {
        clearTimeout(wait);
        sentBody = true; // a final answer came first: the body is never sent
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
  });
}

/** Splits a request built by the helpers into head and body. */
function headAndBody(request: Buffer): [Buffer, Buffer] {
  const end = request.indexOf('\r\n\r\n') + 4;
  return [request.subarray(0, end), request.subarray(end)];
}

const sid = (prefix = 'h'): string => uniqueSid(prefix);

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    client_max_body_size 64k;` });
});
afterAll(async () => {
  await gw?.close();
});

// ---------------------------------------------------------------------------------------------

describe('Expect: 100-continue (§2.4)', () => {
  test('a valid segment gets 100 Continue before its body is read', async () => {
    const id = sid('c');
    const [head, body] = headAndBody(segmentRequest(id, 0, 4, 10, 'hello', [['Expect', '100-continue']]));
    const res = await expectContinue(gw.port, head, body);
    expect(res.continued).toBe(true);
    expect(res.final?.status).toBe(201);
    expect(res.final?.body.toString()).toBe('0-4/10');
    expect(res.responses.map((r) => r.status)).toEqual([100, 201]);
  });

  test('a valid unranged upload gets 100 Continue', async () => {
    const [head, body] = headAndBody(httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="c.txt"'],
      ['Expect', '100-Continue'],
    ], 'hello'));
    const res = await expectContinue(gw.port, head, body);
    expect(res.continued).toBe(true);
    expect(res.final?.status).toBe(200);
  });

  const rejected: Array<[string, number, () => Buffer]> = [
    ['a malformed Session-ID', 400, () => segmentRequest('a.b', 0, 4, 10, 'hello', [['Expect', '100-continue']])],
    ['a malformed Content-Range', 400, () => segmentRequest(sid('c'), 4, 0, 10, 'hello', [['Expect', '100-continue']])],
    ['a malformed Content-Disposition', 400, () => httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'inline'], ['Expect', '100-continue'],
    ], 'hello')],
    ['no Content-Type', 400, () => httpRequest('POST', '/upload', [['Content-Disposition', 'attachment'], ['Expect', '100-continue']], 'hello')],
    ['no Content-Disposition', 415, () => httpRequest('POST', '/upload', [['Content-Type', 'application/octet-stream'], ['Expect', '100-continue']], 'hello')],
    ['a range/length mismatch', 416, () => segmentRequest(sid('c'), 0, 9, 10, 'hello', [['Expect', '100-continue']])],
    ['a body over client_max_body_size', 413, () => segmentRequest(sid('c'), 0, 65536, 65537, Buffer.alloc(65537), [['Expect', '100-continue']])],
    ['PUT', 405, () => httpRequest('PUT', '/upload', [['Content-Type', 'text/plain'], ['Expect', '100-continue']], 'hello')],
    ['a path outside every location', 404, () => httpRequest('POST', '/nowhere', [['Content-Type', 'text/plain'], ['Expect', '100-continue']], 'hello')],
    ['a multipart type without boundary', 400, () => httpRequest('POST', '/upload', [['Content-Type', 'multipart/form-data'], ['Expect', '100-continue']], 'hello')],
    ['a malformed Content-MD5', 400, () => segmentRequest(sid('c'), 0, 4, 10, 'hello', [['Content-MD5', '***'], ['Expect', '100-continue']])],
  ];

  test.each(rejected)('%s: %i and no 100 Continue', async (_label, status, make) => {
    const before = [...listFiles(gw.store), ...listFiles(gw.state)];
    const [head, body] = headAndBody(make());
    const res = await expectContinue(gw.port, head, body);
    expect(res.continued).toBe(false);
    expect(res.raw.toString('latin1')).not.toContain('100 Continue');
    expectPlainError(res.final, status);
    expect(res.closed).toBe(true);
    expect([...listFiles(gw.store), ...listFiles(gw.state)]).toEqual(before);
  });

  test('a segment whose total differs from the session: 409 and no 100 Continue', async () => {
    const id = sid('c');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const [head, body] = headAndBody(segmentRequest(id, 5, 9, 11, 'world', [['Expect', '100-continue']]));
    const res = await expectContinue(gw.port, head, body);
    expect(res.continued).toBe(false);
    expectPlainError(res.final, 409);
  });
});

describe('request framing (§2.4)', () => {
  test('a bare-LF request head is accepted, as nginx does', async () => {
    const id = sid('lf');
    const head = [
      'POST /upload HTTP/1.1', 'Host: test', 'Content-Type: application/octet-stream',
      'Content-Disposition: attachment; filename="lf.txt"', 'X-Content-Range: bytes 0-4/10',
      `Session-ID: ${id}`, 'Content-Length: 5', 'Connection: close',
    ].join('\n');
    const res = await send(gw, `${head}\n\nhello`);
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe('0-4/10');
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello');
  });

  test('HTTP/1.0 segments work and close', async () => {
    const id = sid('h10');
    const request = segmentRequest(id, 0, 4, 10, 'hello').toString('latin1').replace('HTTP/1.1', 'HTTP/1.0');
    const res = await send(gw, request);
    expect(res.status).toBe(201);
    expect(res.closed).toBe(true);
  });

  test.each([
    ['conflicting Content-Length headers', [['Content-Length', '5'], ['Content-Length', '6']]],
    ['a non-numeric Content-Length', [['Content-Length', 'five']]],
    ['a negative Content-Length', [['Content-Length', '-5']]],
  ] as Array<[string, Array<[string, string]>]>)('%s → 400, nothing stored', async (_label, lengths) => {
    const id = sid('cl');
    const before = [...listFiles(gw.store), ...listFiles(gw.state)];
    const res = await send(gw, segmentRequest(id, 0, 4, 10, 'hello', lengths));
    expectPlainError(res, 400);
    expect(res.closed).toBe(true);
    expect([...listFiles(gw.store), ...listFiles(gw.state)]).toEqual(before);
  });

  test('an invalid chunked body → 400, nothing recorded', async () => {
    const id = sid('ch');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const res = await send(gw, segmentRequest(id, 5, 9, 10, 'zz\r\nworld\r\n0\r\n\r\n', [['Transfer-Encoding', 'chunked']]));
    expectPlainError(res, 400);
    expect((await query(gw, id)).headers.range).toBe('0-4/10');
  });

  test('a request head that is too large → a definite 4xx, no hang', async () => {
    const res = await send(gw, segmentRequest(sid('big'), 0, 4, 10, 'hello', [['X-Padding', 'p'.repeat(20000)]]));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.closed).toBe(true);
  });

  test('garbage instead of a request → 400, no hang', async () => {
    const res = await send(gw, Buffer.from('\x00\x01\x02 not http at all\r\n\r\n', 'latin1'));
    expectPlainError(res, 400);
    expect(res.closed).toBe(true);
  });

  // Regression (fixed): the request handler never learns that a half-closed body ended. The HTTP layer answers
  // 400 at once (clientError), and the connection closes while the handler is still awaiting its
  // lock and files; receiveBody() then attaches its 'close' listener to a request that already
  // emitted 'close', and waits forever: the segment's reservation is never released (every later
  // segment overlapping it → 503, until a restart), and an unranged upload's partial file is never
  // removed. Fixed in (src/upload/receive-body.ts): settle at once when the request is
  // already destroyed.
  test('a half-closed segment body → 400 and the session keeps exactly its acknowledged bytes', async () => {
    const id = sid('half');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const full = segmentRequest(id, 5, 9, 10, 'world');
    const res = await send(gw, full.subarray(0, full.length - 2), { halfClose: true });
    expectPlainError(res, 400);
    expect((await query(gw, id)).headers.range).toBe('0-4/10');
    expect(readFileSync(dataPath(gw, id)).subarray(0, 5).toString()).toBe('hello');
    // The segment can be sent again (after the failed one is over) and completes the upload.
    await sleep(300);
    expect((await send(gw, full)).status).toBe(200);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('helloworld');
  });

  // Regression (fixed): same cause as above (the first segment's reservation is never released).
  test('a half-closed first segment → 400, no range recorded, the segment can be sent again', async () => {
    const id = sid('half1');
    const full = segmentRequest(id, 0, 4, 10, 'hello');
    const res = await send(gw, full.subarray(0, full.length - 3), { halfClose: true });
    expectPlainError(res, 400);
    await sleep(300);
    const status = await query(gw, id);
    // Either no session at all, or one without any acknowledged range.
    expect([404, 200]).toContain(status.status);
    expect(status.headers.range).toBeUndefined();
    const again = await send(gw, full);
    expect([again.status, again.body.toString()]).toEqual([201, '0-4/10']);
  });

  // Regression (fixed): same cause as above (the partial file of the unranged upload is never removed).
  test('a half-closed unranged body → 400, no file kept, backend not called', async () => {
    const before = listFiles(gw.store);
    const calls = gw.backend.calls.length;
    const full = httpRequest('POST', '/upload', [['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment; filename="h.txt"']], 'hello world');
    const res = await send(gw, full.subarray(0, full.length - 4), { halfClose: true });
    expectPlainError(res, 400);
    // The 400 may come from the HTTP layer before the handler is done: give it time to clean up.
    await sleep(300);
    for (let i = 0; i < 20 && listFiles(gw.store).length !== before.length; i++) await sleep(50);
    expect(listFiles(gw.store)).toEqual(before);
    expect(gw.backend.calls.length).toBe(calls);
  });

  test('a missing body (no Content-Length, no Transfer-Encoding): 400 unranged, 416 ranged', async () => {
    const unranged = await send(gw, httpRequest('POST', '/upload', [['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment']]));
    expectPlainError(unranged, 400);
    const ranged = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment'], ['X-Content-Range', 'bytes 0-4/10'], ['Session-ID', sid('nob')],
    ]));
    expectPlainError(ranged, 416);
  });
});

describe('methods and locations (§1)', () => {
  test.each(['PUT', 'DELETE', 'PATCH'])('%s → 405 Not Allowed', async (method) => {
    const res = await send(gw, httpRequest(method, '/upload', [['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment']], 'hello'));
    expectPlainError(res, 405);
    expect(res.statusText).toBe('Not Allowed');
    expect(res.headers.allow).toMatch(/POST/);
  });

  test('GET without a Session-ID → 405 (the module\'s answer); with one it is the status query (D22)', async () => {
    expectPlainError(await send(gw, httpRequest('GET', '/upload', [])), 405);
    expectPlainError(await send(gw, httpRequest('GET', '/upload', [['Session-ID', sid('none')]])), 404);
  });

  test('OPTIONS → 200, empty body, Content-Length 0, no Content-Type', async () => {
    const res = await send(gw, httpRequest('OPTIONS', '/upload', []));
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('0');
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.raw.length).toBe(res.raw.indexOf('\r\n\r\n') + 4);
  });

  test('OPTIONS with a body: the body is not taken as a next request', async () => {
    const request = httpRequest('OPTIONS', '/upload', [['Connection', 'keep-alive']], 'GET /x HTTP/1.1\r\nHost: y\r\n\r\n');
    const res = await rawRequest(gw.port, request, { idleMs: 500 });
    expect(res.status).toBe(200);
    expect(res.raw.toString('latin1').match(/HTTP\/1\.1 /g)).toHaveLength(1);
  });

  test.each([
    ['POST', '/other'],
    ['POST', '/'],
    ['GET', '/'],
    ['OPTIONS', '/up'],
  ])('%s %s outside every location → 404', async (method, target) => {
    const res = await send(gw, httpRequest(method, target, [['Content-Type', 'application/octet-stream']], method === 'POST' ? 'hello' : undefined));
    expectPlainError(res, 404);
  });
});

describe('client_max_body_size (§1 row 0)', () => {
  test('a declared body over the limit → 413 before anything is stored', async () => {
    const before = [...listFiles(gw.store), ...listFiles(gw.state)];
    const big = Buffer.alloc(64 * 1024 + 1, 0x62);
    const ranged = await send(gw, segmentRequest(sid('max'), 0, big.length - 1, big.length, big));
    expectPlainError(ranged, 413);
    expect(ranged.statusText).toBe('Request Entity Too Large');
    const unranged = await send(gw, httpRequest('POST', '/upload', [['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment']], big));
    expectPlainError(unranged, 413);
    expect([...listFiles(gw.store), ...listFiles(gw.state)]).toEqual(before);
  });

  test('a chunked body over the limit → 413, nothing recorded', async () => {
    const id = sid('maxc');
    const size = 64 * 1024 + 10;
    expect((await send(gw, segmentRequest(id, 0, 4, size + 5, 'hello'))).status).toBe(201);
    const piece = 'c'.repeat(8192);
    let chunks = '';
    for (let sent = 0; sent < size; sent += piece.length) {
      const part = piece.slice(0, Math.min(piece.length, size - sent));
      chunks += `${part.length.toString(16)}\r\n${part}\r\n`;
    }
    const res = await send(gw, segmentRequest(id, 5, size + 4, size + 5, `${chunks}0\r\n\r\n`, [['Transfer-Encoding', 'chunked']]));
    expectPlainError(res, 413);
    expect((await query(gw, id)).headers.range).toBe(`0-4/${size + 5}`);
  });

  test('a body of exactly the limit is accepted', async () => {
    const body = Buffer.alloc(64 * 1024, 0x63);
    const res = await send(gw, segmentRequest(sid('eq'), 0, body.length - 1, body.length, body));
    expect(res.status).toBe(200);
  });
});
