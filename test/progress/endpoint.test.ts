/**
 * The progress endpoint over real sockets against an in-process gateway configured as the spec's
 * §11 test server (spec upload-progress-module.md): every state of every output byte for byte, the
 * probe's headers, the id and callback rules, the quirks copied or fixed (P1–P10), resumable
 * sessions counted whole, and the Server-Sent Events stream (throttling, end, cleanup).
 */
import { randomBytes } from 'node:crypto';
import { startTestGateway, type RawResponse, type TestGateway } from '../helpers/gateway';
import { waitFor } from './contracts';
import {
  fileHeaders,
  openUpload,
  probe,
  probeUntil,
  PROGRESS_TOP_LEVEL,
  segmentHeaders,
  sleep,
  SseClient,
  TRACKED_LOCATION,
} from './helpers';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({ locationBody: TRACKED_LOCATION, topLevel: PROGRESS_TOP_LEVEL });
});

afterAll(async () => {
  await gw?.close();
});

const proxiedZone = () => gw.gateway.progress('proxied')!;

/** Bodies of the §5.3 matrix, per probe location (query `?X-Progress-ID=<id>` plus what is shown). */
const LOCATIONS: Array<[name: string, target: (id: string) => string, type: string]> = [
  ['default, no callback', (id) => `/progress?X-Progress-ID=${id}`, 'text/javascript'],
  ['default, callback=cb', (id) => `/progress?X-Progress-ID=${id}&callback=cb`, 'text/javascript'],
  ['json', (id) => `/p-json?X-Progress-ID=${id}`, 'application/json'],
  ['jsonp, callback=cb', (id) => `/p-jsonp?X-Progress-ID=${id}&callback=cb`, 'application/javascript'],
  ['java', (id) => `/p-java?X-Progress-ID=${id}`, 'text/javascript'],
  ['xml template', (id) => `/p-xml?X-Progress-ID=${id}`, 'text/xml'],
];

const EXPECTED: Record<string, Record<string, string>> = {
  starting: {
    'default, no callback': '({ "state" : "starting" });\r\n',
    'default, callback=cb': 'cb({ "state" : "starting" });\r\n',
    json: '{ "state" : "starting" }\r\n',
    'jsonp, callback=cb': 'cb({ "state" : "starting" });\r\n',
    java: "new Object({ 'state' : 'starting' })\r\n",
    'xml template': '<upload><state>starting</state></upload>',
  },
  uploading: {
    'default, no callback': '({ "state" : "uploading", "received" : 2000, "size" : 3000 });\r\n',
    'default, callback=cb': 'cb({ "state" : "uploading", "received" : 2000, "size" : 3000 });\r\n',
    json: '{ "state" : "uploading", "received" : 2000, "size" : 3000 }\r\n',
    'jsonp, callback=cb': 'cb({ "state" : "uploading", "received" : 2000, "size" : 3000 });\r\n',
    java: "new Object({ 'state' : 'uploading', 'received' : 2000, 'size' : 3000 })\r\n",
    'xml template': '<upload><state>uploading</state><size>3000</size><uploaded>2000</uploaded><remaining>1000</remaining></upload>',
  },
  done: {
    'default, no callback': '({ "state" : "done" });\r\n',
    'default, callback=cb': 'cb({ "state" : "done" });\r\n',
    json: '{ "state" : "done" }\r\n',
    'jsonp, callback=cb': 'cb({ "state" : "done" });\r\n',
    java: "new Object({ 'state' : 'done' })\r\n",
    'xml template': '<upload><state>done</state><size>3000</size><uploaded>3000</uploaded></upload>',
  },
  error: {
    'default, no callback': '({ "state" : "error", "status" : 413 });\r\n',
    'default, callback=cb': 'cb({ "state" : "error", "status" : 413 });\r\n',
    json: '{ "state" : "error", "status" : 413 }\r\n',
    'jsonp, callback=cb': 'cb({ "state" : "error", "status" : 413 });\r\n',
    java: "new Object({ 'state' : 'error', 'status' : 413 })\r\n",
    'xml template': '<upload><state>error</state><code>413</code></upload>',
  },
};

/** Probes every location and checks body (byte for byte), Content-Type and Content-Length. */
async function expectEveryOutput(state: keyof typeof EXPECTED, id: string): Promise<void> {
  for (const [name, target, type] of LOCATIONS) {
    const res = await probe(gw.port, target(id));
    const expected = EXPECTED[state][name];
    expect({ name, status: res.status, type: res.headers['content-type'], body: res.body.toString('latin1') }).toEqual({ name, status: 200, type, body: expected });
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(expected));
  }
}

describe('the four states through real sockets, byte for byte (§5.3)', () => {
  test('starting, uploading (2000 of 3000), done, error (413)', async () => {
    const id = 'matrix1';
    await expectEveryOutput('starting', id);

    const data = randomBytes(3000);
    const upload = openUpload(gw.port, '/upload', fileHeaders(id, 3000));
    upload.write(data.subarray(0, 2000));
    await probeUntil(gw.port, `/p-json?X-Progress-ID=${id}`, '{ "state" : "uploading", "received" : 2000, "size" : 3000 }\r\n');
    await expectEveryOutput('uploading', id);
    // /p-partial: a custom uploading template with the callback and $arg_x (§11).
    expect((await probe(gw.port, `/p-partial?x=XX&callback=C&X-Progress-ID=${id}`)).body.toString()).toBe('U 2000/3000 cb=[C] arg=[XX]');

    const answer = await upload.finish(data.subarray(2000));
    expect(answer.status).toBe(200);
    await expectEveryOutput('done', id);
    expect((await probe(gw.port, `/p-partial?x=XX&callback=C&X-Progress-ID=${id}`)).body.toString()).toBe('C({ "state" : "done" });\r\n');

    // client_max_body_size 100 in /small: 413, and at once an error entry (§4.4).
    const rejected = openUpload(gw.port, '/small', fileHeaders('err1', 3000));
    const refused = await rejected.finish(data);
    expect(refused.status).toBe(413);
    await expectEveryOutput('error', 'err1');
  });

  test('the body complete and the backend still working: uploading, received == size (§4.2 step 3)', async () => {
    gw.backend.delayMs = 600;
    try {
      const upload = openUpload(gw.port, '/upload', fileHeaders('slowbackend', 500));
      const answer = upload.finish(randomBytes(500));
      await probeUntil(gw.port, '/p-json?X-Progress-ID=slowbackend', '{ "state" : "uploading", "received" : 500, "size" : 500 }\r\n');
      expect((await answer).status).toBe(200);
      expect((await probe(gw.port, '/p-json?X-Progress-ID=slowbackend')).body.toString()).toBe('{ "state" : "done" }\r\n');
    } finally {
      gw.backend.delayMs = 0;
    }
  });
});

describe('the probe answer (§6)', () => {
  test('headers in the module\'s order: Content-Type, Content-Length, Connection, then Expires and Cache-Control', async () => {
    const res = await probe(gw.port, '/p-json?X-Progress-ID=h1', [['Connection', 'keep-alive']], 'GET', 300);
    expect(res.headerList.map(([name]) => name)).toEqual(['Date', 'Content-Type', 'Content-Length', 'Connection', 'Expires', 'Cache-Control']);
    expect(res.headers).toMatchObject({ 'content-type': 'application/json', 'content-length': '26', connection: 'keep-alive', expires: 'Thu, 01 Jan 1970 00:00:01 GMT', 'cache-control': 'no-cache' });
    expect(res.headers.date).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(res.closed).toBe(false);
  });

  test('HEAD: the same headers without Content-Length, no body, keep-alive (P10 copied)', async () => {
    const res = await probe(gw.port, '/p-json?X-Progress-ID=h2', [['Connection', 'keep-alive']], 'HEAD', 300);
    expect(res.status).toBe(200);
    expect(res.headerList.map(([name]) => name)).toEqual(['Date', 'Content-Type', 'Connection', 'Expires', 'Cache-Control']);
    expect(res.raw.toString('latin1').endsWith('\r\n\r\n')).toBe(true);
    expect(res.closed).toBe(false);
  });

  test('HTTP/1.0: the same body, Connection: close', async () => {
    const { rawRequest } = await import('../helpers/gateway');
    const res = await rawRequest(gw.port, 'GET /progress?X-Progress-ID=h3 HTTP/1.0\r\n\r\n');
    expect(res.raw.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(res.headers.connection).toBe('close');
    expect(res.body.toString()).toBe('({ "state" : "starting" });\r\n');
  });

  test('a GET with a body, Range and conditional headers: the normal full 200', async () => {
    const { rawRequest, httpRequest } = await import('../helpers/gateway');
    const withBody = await rawRequest(gw.port, httpRequest('GET', '/p-json?X-Progress-ID=h4', [], 'abcd'));
    expect(withBody.status).toBe(200);
    const ranged = await probe(gw.port, '/p-json?X-Progress-ID=h4', [['Range', 'bytes=0-5'], ['If-None-Match', '*'], ['If-Modified-Since', 'Thu, 01 Jan 2037 00:00:00 GMT']]);
    expect([ranged.status, ranged.body.toString()]).toEqual([200, '{ "state" : "starting" }\r\n']);
  });

  test('other methods: 405; no id: 404 (P10 copied); the wrong header name counts as no id', async () => {
    for (const method of ['POST', 'PUT', 'OPTIONS', 'DELETE']) expect((await probe(gw.port, '/progress?X-Progress-ID=m', [], method)).status).toBe(405);
    expect((await probe(gw.port, '/progress')).status).toBe(404);
    expect((await probe(gw.port, '/p-hdr', [['X-Progress-ID', 'k']])).status).toBe(404);
    expect((await probe(gw.port, '/p-hdr', [['X-Upload-Key', 'k']])).status).toBe(200);
  });

  test('sub-paths of a prefix progress location are the progress endpoint too', async () => {
    expect((await probe(gw.port, '/progress/foo/bar?X-Progress-ID=sub')).body.toString()).toBe('({ "state" : "starting" });\r\n');
  });

  test('the id: header beats query, any-case header, empty id, case-sensitive ids', async () => {
    const upload = openUpload(gw.port, '/upload', fileHeaders(null, 10, [['x-progress-id', 'CaseID']]));
    upload.write('12345');
    await probeUntil(gw.port, '/p-json?X-Progress-ID=CaseID', (b) => b.includes('"received" : 5'));
    expect((await probe(gw.port, '/p-json?X-Progress-ID=caseid')).body.toString()).toBe('{ "state" : "starting" }\r\n');
    expect((await probe(gw.port, '/p-json?X-Progress-ID=nope', [['X-Progress-ID', 'CaseID']])).body.toString()).toContain('"received" : 5');
    await upload.finish('67890');
    // The empty id is an id like any other.
    const empty = openUpload(gw.port, '/upload', fileHeaders('', 4));
    expect((await empty.finish('abcd')).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=')).body.toString()).toBe('{ "state" : "done" }\r\n');
  });

  test('upload_progress_header X-Upload-Key: upload and probe by that name', async () => {
    const upload = openUpload(gw.port, '/hdrupload', fileHeaders(null, 6, [['X-Upload-Key', 'k1']]));
    expect((await upload.finish('abcdef')).status).toBe(200);
    expect((await probe(gw.port, '/p-hdr?X-Upload-Key=k1')).body.toString()).toBe('{ "state" : "done" }\r\n');
    // Ids are plain strings in the zone: the default location finds it by X-Progress-ID.
    expect((await probe(gw.port, '/p-json', [['X-Progress-ID', 'k1']])).body.toString()).toBe('{ "state" : "done" }\r\n');
  });
});

describe('the quirks (§12)', () => {
  test('P1 fixed: before the first body byte the upload is at 0, not at its size', async () => {
    const upload = openUpload(gw.port, '/upload', fileHeaders('p1', 4000));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=p1', '{ "state" : "uploading", "received" : 0, "size" : 4000 }\r\n');
    upload.write(randomBytes(1000));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=p1', '{ "state" : "uploading", "received" : 1000, "size" : 4000 }\r\n');
    expect((await upload.finish(randomBytes(3000))).status).toBe(200);
  });

  test('P2: a second upload with an id in use gets 500 and never reaches the backend; the first is not poisoned', async () => {
    const calls = gw.backend.calls.length;
    const first = openUpload(gw.port, '/upload', fileHeaders('dup1', 2000));
    first.write(randomBytes(1000));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=dup1', (b) => b.includes('"received" : 1000'));
    const second = openUpload(gw.port, '/upload', fileHeaders('dup1', 10));
    const refused = await second.finish('0123456789');
    expect(refused.status).toBe(500);
    expect(gw.backend.calls.length).toBe(calls);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=dup1')).body.toString()).toBe('{ "state" : "uploading", "received" : 1000, "size" : 2000 }\r\n');
    expect((await first.finish(randomBytes(1000))).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=dup1')).body.toString()).toBe('{ "state" : "done" }\r\n');
    // Re-using it after done but before it expires is a duplicate too (copied).
    expect((await openUpload(gw.port, '/upload', fileHeaders('dup1', 3)).finish('abc')).status).toBe(500);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=dup1')).body.toString()).toBe('{ "state" : "done" }\r\n');
  });

  test('P4 fixed: a callback that is not a JavaScript name is not reflected', async () => {
    expect((await probe(gw.port, '/progress?X-Progress-ID=p4&callback=%3Cscript%3E')).body.toString()).toBe('({ "state" : "starting" });\r\n');
    expect((await probe(gw.port, '/progress?X-Progress-ID=p4&callback=<script>alert(1)</script>')).body.toString()).toBe('({ "state" : "starting" });\r\n');
    expect((await probe(gw.port, '/p-cb?X-Progress-ID=p4&cb=F')).body.toString()).toBe('F({ "state" : "starting" });\r\n');
  });

  test('P5 fixed: an id of 300 bytes is found during and after the upload', async () => {
    const id = 'L'.repeat(300);
    const upload = openUpload(gw.port, '/upload', fileHeaders(id, 100));
    upload.write(randomBytes(40));
    await probeUntil(gw.port, `/p-json?X-Progress-ID=${id}`, '{ "state" : "uploading", "received" : 40, "size" : 100 }\r\n');
    expect((await upload.finish(randomBytes(60))).status).toBe(200);
    expect((await probe(gw.port, '/p-json', [['X-Progress-ID', id]])).body.toString()).toBe('{ "state" : "done" }\r\n');
  });

  test('P6 fixed: a chunked body reports its real bytes (size -1 while unknown), then done', async () => {
    const upload = openUpload(gw.port, '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="c.bin"'],
      ['Transfer-Encoding', 'chunked'],
      ['X-Progress-ID', 'p6'],
    ]);
    upload.write(`1000\r\n${'a'.repeat(0x1000)}\r\n`);
    await probeUntil(gw.port, '/p-json?X-Progress-ID=p6', '{ "state" : "uploading", "received" : 4096, "size" : -1 }\r\n');
    expect((await upload.finish('0\r\n\r\n')).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=p6')).body.toString()).toBe('{ "state" : "done" }\r\n');
    expect((await probe(gw.port, '/p-xml?X-Progress-ID=p6')).body.toString()).toBe('<upload><state>done</state><size>4096</size><uploaded>4096</uploaded></upload>');
  });

  test('P7 copied: a backend 302 is done (its status stored), a 404 is error 404', async () => {
    expect((await openUpload(gw.port, '/upload?status=302', fileHeaders('p7a', 3)).finish('abc')).status).toBe(302);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=p7a')).body.toString()).toBe('{ "state" : "done" }\r\n');
    expect((await probe(gw.port, '/p-partial?X-Progress-ID=p7a')).body.toString()).toBe('({ "state" : "done" });\r\n');
    expect((await openUpload(gw.port, '/upload?status=404', fileHeaders('p7b', 3)).finish('abc')).status).toBe(404);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=p7b')).body.toString()).toBe('{ "state" : "error", "status" : 404 }\r\n');
  });

  test('a client that leaves mid-body: error 400 (as the module)', async () => {
    const upload = openUpload(gw.port, '/upload', fileHeaders('gone', 1000));
    upload.write(randomBytes(300));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=gone', (b) => b.includes('"received" : 300'));
    upload.destroy();
    await probeUntil(gw.port, '/p-json?X-Progress-ID=gone', '{ "state" : "error", "status" : 400 }\r\n');
  });

  test('a multipart form: size is the request\'s Content-Length, done after the backend answered', async () => {
    const boundary = 'XyZ';
    const body = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n${'x'.repeat(500)}\r\n--${boundary}--\r\n`);
    const upload = openUpload(gw.port, '/upload', [
      ['Content-Type', `multipart/form-data; boundary=${boundary}`],
      ['Content-Length', String(body.length)],
      ['X-Progress-ID', 'form1'],
    ]);
    upload.write(body.subarray(0, 100));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=form1', `{ "state" : "uploading", "received" : 100, "size" : ${body.length} }\r\n`);
    expect((await upload.finish(body.subarray(100))).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=form1')).body.toString()).toBe('{ "state" : "done" }\r\n');
  });

  test('the classic form: the id in the action\'s query string, the page polling JSON (the README\'s wiring)', async () => {
    const boundary = 'b0';
    const body = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\n\r\n${'y'.repeat(300)}\r\n--${boundary}--\r\n`);
    const upload = openUpload(gw.port, '/upload?X-Progress-ID=4f1c9a', [['Content-Type', `multipart/form-data; boundary=${boundary}`], ['Content-Length', String(body.length)]]);
    upload.write(body.subarray(0, 50));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=4f1c9a', `{ "state" : "uploading", "received" : 50, "size" : ${body.length} }\r\n`);
    expect((await upload.finish(body.subarray(50))).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=4f1c9a')).body.toString()).toBe('{ "state" : "done" }\r\n');
  });

  test('P9: a finished entry is kept for the track_uploads timeout, then the id is unknown again', async () => {
    const zone = proxiedZone();
    await zone.begin('p9', { kind: 'request', size: 1 }, 'x');
    await zone.end('p9', 'x', { finish: 200, ttlMs: 200 });
    expect((await probe(gw.port, '/p-json?X-Progress-ID=p9')).body.toString()).toBe('{ "state" : "done" }\r\n');
    await sleep(300);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=p9')).body.toString()).toBe('{ "state" : "starting" }\r\n');
  });
});

describe('resumable sessions: received and size count the whole session', () => {
  test('three segments with one progress id; a segment in flight adds its bytes; done after the hand-off', async () => {
    const data = randomBytes(30_000);
    const send = (start: number, end: number) => openUpload(gw.port, '/upload', segmentHeaders('sess-a', 'sp1', start, end, data.length)).finish(data.subarray(start, end + 1));
    expect((await send(0, 9999)).status).toBe(201);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp1')).body.toString()).toBe('{ "state" : "uploading", "received" : 10000, "size" : 30000 }\r\n');
    // The third segment streams: its bytes count at once, before it is acknowledged.
    const third = openUpload(gw.port, '/upload', segmentHeaders('sess-a', 'sp1', 20_000, 29_999, data.length));
    third.write(data.subarray(20_000, 25_000));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=sp1', '{ "state" : "uploading", "received" : 15000, "size" : 30000 }\r\n');
    expect((await third.finish(data.subarray(25_000, 30_000))).status).toBe(201);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp1')).body.toString()).toBe('{ "state" : "uploading", "received" : 20000, "size" : 30000 }\r\n');
    // After a page reload the page may use a new progress id: it starts from what the gateway holds.
    const second = openUpload(gw.port, '/upload', segmentHeaders('sess-a', 'sp1-reloaded', 10_000, 19_999, data.length));
    second.write(data.subarray(10_000, 10_001));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=sp1-reloaded', '{ "state" : "uploading", "received" : 20001, "size" : 30000 }\r\n');
    expect((await second.finish(data.subarray(10_001, 20_000))).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp1-reloaded')).body.toString()).toBe('{ "state" : "done" }\r\n');
    // The first id saw the session up to its last segment; it is not finished by the other id's hand-off.
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp1')).body.toString()).toBe('{ "state" : "uploading", "received" : 20000, "size" : 30000 }\r\n');
  });

  test('a failed segment drops out and the session goes on (no error state); a final 409 is an error', async () => {
    const data = randomBytes(2000);
    expect((await openUpload(gw.port, '/upload', segmentHeaders('sess-b', 'sp2', 0, 999, 2000)).finish(data.subarray(0, 1000))).status).toBe(201);
    const cut = openUpload(gw.port, '/upload', segmentHeaders('sess-b', 'sp2', 1000, 1999, 2000));
    cut.write(data.subarray(1000, 1500));
    await probeUntil(gw.port, '/p-json?X-Progress-ID=sp2', (b) => b.includes('"received" : 1500'));
    cut.destroy();
    await probeUntil(gw.port, '/p-json?X-Progress-ID=sp2', '{ "state" : "uploading", "received" : 1000, "size" : 2000 }\r\n');
    // Different bytes where the gateway has bytes: 409, final for the client (D4).
    const conflicting = Buffer.from(data.subarray(0, 1000));
    conflicting[0] ^= 0xff;
    expect((await openUpload(gw.port, '/upload', segmentHeaders('sess-b', 'sp2', 0, 999, 2000)).finish(conflicting)).status).toBe(409);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp2')).body.toString()).toBe('{ "state" : "error", "status" : 409 }\r\n');
    // The client sends the right bytes: the entry reopens and completes.
    expect((await openUpload(gw.port, '/upload', segmentHeaders('sess-b', 'sp2', 1000, 1999, 2000)).finish(data.subarray(1000))).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp2')).body.toString()).toBe('{ "state" : "done" }\r\n');
  });

  test('a repeated last segment replays the answer and the entry stays done; another session\'s id is a duplicate', async () => {
    const data = randomBytes(100);
    const last = () => openUpload(gw.port, '/upload', segmentHeaders('sess-c', 'sp3', 0, 99, 100)).finish(data);
    expect((await last()).status).toBe(200);
    expect((await last()).status).toBe(200);
    expect((await probe(gw.port, '/p-json?X-Progress-ID=sp3')).body.toString()).toBe('{ "state" : "done" }\r\n');
    expect((await openUpload(gw.port, '/upload', segmentHeaders('sess-other', 'sp3', 0, 99, 100)).finish(data)).status).toBe(500);
  });
});

describe('Server-Sent Events', () => {
  async function expectNoWatchers(): Promise<void> {
    await waitFor(() => proxiedZone().watchers() === 0, 2000, 'no listener left on the zone');
  }

  test('a slow upload: at most 10 events per second, real progress, speed, ETA; the last event is the final state and the stream closes', async () => {
    const total = 60_000;
    const sse = new SseClient(gw.port, '/progress?X-Progress-ID=sse1');
    await sse.opened;
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers['cache-control']).toBe('no-cache');
    const upload = openUpload(gw.port, '/upload', fileHeaders('sse1', total));
    const started = Date.now();
    // 2 s of 10 ms writes: 200 changes, far more than the stream may send.
    for (let sent = 0; sent < total; sent += 300) {
      upload.write(randomBytes(300));
      await sleep(10);
    }
    expect((await upload.finish()).status).toBe(200);
    await sse.done;
    const elapsed = (Date.now() - started) / 1000;
    const events = sse.states;
    expect(sse.ended).toBe(true);
    expect(events[0]!.state).toMatch(/^(starting|uploading)$/);
    expect(events[events.length - 1]).toMatchObject({ id: 'sse1', state: 'done', received: total, total, percent: 100, etaSeconds: 0 });
    expect(sse.events[sse.events.length - 1]!.id).toBe('final');
    // Throttled: ≤ 10 per second (+1 for the first), at least ~95 ms apart on arrival.
    expect(events.length).toBeLessThanOrEqual(Math.ceil(elapsed * 10) + 2);
    for (let i = 1; i < sse.events.length; i++) expect(sse.events[i]!.at - sse.events[i - 1]!.at).toBeGreaterThanOrEqual(85);
    const uploading = events.filter((e) => e.state === 'uploading');
    expect(uploading.length).toBeGreaterThanOrEqual(8);
    for (let i = 1; i < uploading.length; i++) expect(uploading[i]!.received).toBeGreaterThanOrEqual(uploading[i - 1]!.received);
    expect(uploading.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== null && e.percent! > 0 && e.percent! < 100)).toBe(true);
    expect(uploading.every((e) => e.total === total && e.ranges.length <= 1)).toBe(true);
    await expectNoWatchers();
  });

  test('a resumable session: totals of the whole file and its ranges', async () => {
    const data = randomBytes(3000);
    expect((await openUpload(gw.port, '/upload', segmentHeaders('sess-sse', 'sse2', 2000, 2999, 3000)).finish(data.subarray(2000))).status).toBe(201);
    const sse = new SseClient(gw.port, '/progress', { 'X-Progress-ID': 'sse2' });
    await waitFor(() => sse.events.length > 0, 2000, 'the first event');
    expect(sse.states[0]).toMatchObject({ state: 'uploading', received: 1000, total: 3000, percent: 33.33, ranges: [{ start: 2000, end: 2999 }] });
    expect((await openUpload(gw.port, '/upload', segmentHeaders('sess-sse', 'sse2', 0, 1999, 3000)).finish(data.subarray(0, 2000))).status).toBe(200);
    await sse.done;
    expect(sse.states[sse.states.length - 1]).toMatchObject({ state: 'done', received: 3000, total: 3000, ranges: [{ start: 0, end: 2999 }] });
    await expectNoWatchers();
  });

  test('the client leaves: its listener and timers go at once', async () => {
    const clients = [new SseClient(gw.port, '/progress?X-Progress-ID=leave1'), new SseClient(gw.port, '/progress?X-Progress-ID=leave1'), new SseClient(gw.port, '/p-json?X-Progress-ID=leave2')];
    await Promise.all(clients.map((c) => c.opened));
    await waitFor(() => proxiedZone().watchers() === 3, 2000, 'three listeners');
    await waitFor(() => clients.every((c) => c.events.length === 1), 2000, 'a starting event each');
    expect(clients[0]!.states[0]).toMatchObject({ state: 'starting', received: 0, total: null, percent: null });
    for (const c of clients) c.close();
    await expectNoWatchers();
  });

  test('an error ends the stream with the error state', async () => {
    const sse = new SseClient(gw.port, '/progress?X-Progress-ID=sse-err');
    await waitFor(() => sse.events.length > 0, 2000, 'the first event');
    const rejected = await openUpload(gw.port, '/small', fileHeaders('sse-err', 3000)).finish(randomBytes(3000));
    expect(rejected.status).toBe(413);
    await sse.done;
    expect(sse.states[sse.states.length - 1]).toMatchObject({ state: 'error', status: 413 });
    await expectNoWatchers();
  });

  test('a reconnect after the final event gets 204 (EventSource stops); HEAD and no id as for polling', async () => {
    await openUpload(gw.port, '/upload', fileHeaders('sse-fin', 3)).finish('abc');
    const again = new SseClient(gw.port, '/progress?X-Progress-ID=sse-fin', { 'Last-Event-ID': 'final' });
    await again.done;
    expect(again.status).toBe(204);
    expect(proxiedZone().watchers()).toBe(0);
    // Without Last-Event-ID the final state is sent once, then the stream closes.
    const once = new SseClient(gw.port, '/progress?X-Progress-ID=sse-fin');
    await once.done;
    expect(once.states).toEqual([expect.objectContaining({ state: 'done', received: 3 })]);
    const noId = new SseClient(gw.port, '/progress');
    await noId.done;
    expect(noId.status).toBe(404);
  });

  test('gateway close ends open streams', async () => {
    const other = await startTestGateway({ locationBody: TRACKED_LOCATION, topLevel: PROGRESS_TOP_LEVEL });
    const sse = new SseClient(other.port, '/progress?X-Progress-ID=closing');
    await waitFor(() => sse.events.length > 0, 2000, 'the first event');
    await other.close();
    await sse.done;
    expect(other.gateway.progress('proxied')!.watchers()).toBe(0);
  });
});

export type { RawResponse };
