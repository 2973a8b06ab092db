/**
 * One `describe` per row of the deviations table (shared/spec/deviations.md: D1–D14, D17–D23;
 * D5, D15 and D16 are multipart rules tested with the multipart suite). Every test talks to a
 * real in-process gateway over real sockets, with a real capture backend behind it.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import {
  DEFAULT_LOCATION,
  httpRequest,
  segmentRequest,
  startTestGateway,
  type BackendCall,
  type RawResponse,
  type TestGateway,
  parseAll,
  sleep,
  listFiles,
  dataPath,
  query,
  send,
  expectPlainError,
  lastCall,
  type Answer,
  sid as uniqueSid,
} from './helpers/gateway';
import { parseConfig, ConfigError } from '../src/config/parse';
import { probeMaxFileSize } from '../src/store/files';

// ---------------------------------------------------------------------------------------------
// Local helpers

interface Exchange {
  responses: Answer[];
  /** Final (non-1xx) responses. */
  finals: Answer[];
  raw: Buffer;
  closed: boolean;
  ms: number;
}

/** Sends `pieces` on one connection, `delayMs` apart, and reads until the server closes or is idle `idleMs`. */
function exchange(port: number, pieces: Array<Buffer | string>, options: { delayMs?: number; halfClose?: boolean; idleMs?: number; head?: boolean } = {}): Promise<Exchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      const responses = parseAll(raw, options.head);
      resolve({ responses, finals: responses.filter((r) => r.status >= 200), raw, closed, ms: Date.now() - started });
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(false), options.idleMs ?? 3000);
    };
    socket.on('connect', async () => {
      arm();
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0 && options.delayMs) await sleep(options.delayMs);
        if (socket.destroyed) return;
        socket.write(pieces[i]);
        arm();
      }
      if (options.halfClose) socket.end();
    });
    socket.on('data', (c) => {
      chunks.push(c);
      arm();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
  });
}

/** Cuts a buffer into `n` pieces of roughly equal size. */
function split(data: Buffer, n: number): Buffer[] {
  const size = Math.ceil(data.length / n);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

/** A request whose first `firstBytes` bytes are sent now and the rest on `finish()`. */
function holdRequest(port: number, request: Buffer, firstBytes: number) {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<Buffer>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks))));
  const connected = new Promise<void>((resolve) =>
    socket.on('connect', () => {
      socket.write(request.subarray(0, firstBytes));
      resolve();
    }),
  );
  return {
    connected,
    async finish(): Promise<Answer> {
      socket.write(request.subarray(firstBytes));
      return parseAll(await closed)[0];
    },
    abort(): void {
      socket.destroy();
    },
  };
}

const sid = (prefix = 's'): string => uniqueSid(prefix);

/** State files of a session (whatever the store's file format, they are named after the id). */
function stateFiles(gw: TestGateway, id: string): string[] {
  return listFiles(gw.state).filter((f) => path.basename(f).startsWith(`${id}.`));
}

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

const PIPELINED = 'GET /pipelined-next HTTP/1.1\r\nHost: test\r\n\r\n';

// One gateway with the conformance profile serves most rows; rows that need other settings start their own.
let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.close();
});

// ---------------------------------------------------------------------------------------------

describe('D1: malformed upload headers → 400 with a one-line reason, body never read as a next request', () => {
  const variants: Array<[string, (id: string, length: number) => Array<[string, string]>]> = [];
  const base = (id: string, length: number): Array<[string, string]> => [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="d1.bin"'],
    ['X-Content-Range', `bytes 0-${length - 1}/${length * 2}`],
    ['Session-ID', id],
    ['Connection', 'keep-alive'],
  ];
  const replace = (name: string, value: string) => (id: string, length: number) =>
    base(id, length).map(([k, v]): [string, string] => (k === name ? [k, value] : [k, v]));
  // §3.2 Content-Disposition that does not start with form-data/attachment, or is empty.
  for (const cd of ['inline; filename="a"', '', 'attachmentX; filename="a"', 'foo', ';filename="a"']) {
    variants.push([`Content-Disposition ${JSON.stringify(cd)}`, replace('Content-Disposition', cd)]);
  }
  // §3.3 Session-ID with an illegal character, or empty.
  for (const s of ['a.b', '../etc', 'a/b', 'a b', '', 'caf\xe9', 'a+b', 'a%2e']) {
    variants.push([`Session-ID ${JSON.stringify(s)}`, replace('Session-ID', s)]);
  }
  variants.push(['X-Session-ID "x.y"', (id, length) => base(id, length).map(([k, v]): [string, string] => (k === 'Session-ID' ? ['X-Session-ID', 'x.y'] : [k, v]))]);
  // §3.4 Content-Range empty, without "bytes ", syntactically bad, or out of bounds.
  for (const r of ['', 'bytes=0-4/10', 'bytes  0-4/10', '0-4/10', 'bytes 0-4/*', 'bytes */10', 'bytes 4-0/10', 'bytes 5-9/5', 'bytes 0-4/0',
    'bytes +0-4/10', 'bytes 0-4', 'bytes 0 -4/10', 'bytes 0-4/10,5-9/10', 'bytes 0-10/10', 'items 0-4/10']) {
    variants.push([`X-Content-Range ${JSON.stringify(r)}`, replace('X-Content-Range', r)]);
  }
  variants.push(['Content-Range "bytes 0x1-4/10"', (id, length) => base(id, length).map(([k, v]): [string, string] => (k === 'X-Content-Range' ? ['Content-Range', 'bytes 0x1-4/10'] : [k, v]))]);
  // Q24 decided: a range without a Session-ID cannot be placed anywhere.
  variants.push(['Content-Range without a Session-ID', (id, length) => base(id, length).filter(([k]) => k !== 'Session-ID')]);
  // §4.1 multipart Content-Type without a usable boundary (the module's Kind-B no-answer).
  for (const ct of ['multipart/form-data', 'multipart/form-data; charset=utf-8', 'multipart/form-data; boundary=', 'multipart/form-data; BOUNDARY=x']) {
    variants.push([`Content-Type ${JSON.stringify(ct)}`, replace('Content-Type', ct)]);
  }

  test.each(variants)('%s', async (_label, headers) => {
    const id = sid('d1');
    const before = [...listFiles(gw.store), ...listFiles(gw.state)];
    const calls = gw.backend.calls.length;
    const request = httpRequest('POST', '/upload', headers(id, PIPELINED.length), PIPELINED);
    const res = await exchange(gw.port, [request]);
    expect(res.finals).toHaveLength(1);
    expectPlainError(res.finals[0], 400);
    expect(res.finals[0].statusText).toBe('Bad Request');
    // The body (which looks like a request) was never answered as one.
    expect(res.raw.toString('latin1')).not.toContain('pipelined-next');
    expect(res.closed).toBe(true);
    // Nothing stored, backend not called.
    expect([...listFiles(gw.store), ...listFiles(gw.state)]).toEqual(before);
    expect(gw.backend.calls.length).toBe(calls);
  });

  test('a rejected request with a large body still gets its answer (no reset before the client reads it)', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 0x41);
    const res = await send(gw, segmentRequest('bad.id', 0, body.length - 1, body.length, body, [['Connection', 'keep-alive']]));
    expectPlainError(res, 400);
    expect(res.closed).toBe(true);
  });

  test('an empty Content-Type is present and not multipart: raw mode (§1)', async () => {
    const id = sid('d1ct');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', ''],
      ['Content-Disposition', 'attachment; filename="e.bin"'],
      ['X-Content-Range', 'bytes 0-1/2'],
      ['Session-ID', id],
    ], 'ok'));
    expect(res.status).toBe(200);
    expect(gw.backend.field(lastCall(gw), 'content_type')).toBe('');
  });

  test('the module\'s header variants that are valid stay valid (X-Session-ID, Content-Range, case-insensitive names)', async () => {
    const id = sid('d1ok');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['content-type', 'application/octet-stream'],
      ['CONTENT-DISPOSITION', 'attachment; filename="ok.bin"'],
      ['content-range', 'bytes 0-4/10'],
      ['x-session-id', id],
    ], 'hello'));
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe('0-4/10');
  });
});

describe('D2: the same status whatever the packet timing; Connection: close honoured', () => {
  let small: TestGateway;
  beforeAll(async () => {
    small = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    client_max_body_size 1k;` });
  });
  afterAll(async () => {
    await small?.close();
  });

  const chunked = (chunks: string[]): Buffer => Buffer.from(chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n', 'latin1');
  const cases: Array<[string, number, () => { port: number; request: Buffer }]> = [
    ['400 malformed header (Session-ID)', 400, () => ({ port: gw.port, request: segmentRequest('x.y', 0, 9, 20, '0123456789') })],
    ['400 malformed multipart body (inline part)', 400, () => ({
      port: gw.port,
      request: httpRequest('POST', '/upload', [['Content-Type', 'multipart/form-data; boundary=B']],
        '--B\r\nContent-Disposition: inline; name="a"\r\n\r\nvalue\r\n--B--\r\n'),
    })],
    ['416 Content-Length ≠ range length', 416, () => ({ port: gw.port, request: segmentRequest(sid('d2'), 0, 9, 20, '012345678') })],
    ['416 chunked body shorter than the range', 416, () => ({
      port: gw.port,
      request: segmentRequest(sid('d2'), 0, 9, 20, chunked(['0123', '45678']), [['Transfer-Encoding', 'chunked']]),
    })],
    ['416 chunked body longer than the range', 416, () => ({
      port: gw.port,
      request: segmentRequest(sid('d2'), 0, 9, 20, chunked(['0123', '4567890']), [['Transfer-Encoding', 'chunked']]),
    })],
    ['413 declared body over client_max_body_size', 413, () => ({ port: small.port, request: segmentRequest(sid('d2'), 0, 1999, 4000, Buffer.alloc(2000, 0x61)) })],
    ['413 chunked body over client_max_body_size', 413, () => ({
      port: small.port,
      request: segmentRequest(sid('d2'), 0, 1999, 4000, chunked(['a'.repeat(600), 'b'.repeat(600), 'c'.repeat(800)]), [['Transfer-Encoding', 'chunked']]),
    })],
  ];

  test.each(cases)('%s: one write and many delayed writes give the same answer', async (_label, status, make) => {
    const one = make();
    const whole = await exchange(one.port, [one.request]);
    const other = make();
    const pieces = await exchange(other.port, split(other.request, 6), { delayMs: 40 });
    for (const res of [whole, pieces]) {
      expect(res.finals).toHaveLength(1);
      expectPlainError(res.finals[0], status);
      // Connection: close (sent by the helper) is honoured: the server closes, nothing hangs.
      expect(res.closed).toBe(true);
      expect(res.finals[0].headers.connection).toBe('close');
    }
  });

  test('an error on a keep-alive request also closes the connection (the unread body is never a next request)', async () => {
    const request = segmentRequest(sid('d2'), 0, PIPELINED.length - 1, 100, PIPELINED, [['Content-MD5', 'not base64!']] );
    const keepAlive = Buffer.from(request.toString('latin1').replace('Connection: close', 'Connection: keep-alive'), 'latin1');
    const res = await exchange(gw.port, split(keepAlive, 3), { delayMs: 30 });
    expect(res.finals.map((r) => r.status)).toEqual([400]);
    expect(res.closed).toBe(true);
  });

  test('a successful segment with Connection: close closes; with keep-alive the connection is reused', async () => {
    const id = sid('d2ka');
    const closing = await exchange(gw.port, [segmentRequest(id, 0, 4, 10, 'hello')]);
    expect(closing.finals.map((r) => r.status)).toEqual([201]);
    expect(closing.closed).toBe(true);
    expect(closing.ms).toBeLessThan(2000);
    const first = segmentRequest(id, 5, 6, 10, ' w', [['Connection', 'keep-alive']]);
    const second = segmentRequest(id, 7, 9, 10, 'orl');
    const reused = await exchange(gw.port, [first, second], { delayMs: 100 });
    expect(reused.finals.map((r) => r.status)).toEqual([201, 200]);
    expect(reused.finals[0].body.toString()).toBe('0-6/10');
    expect(reused.closed).toBe(true);
  });
});

describe('D3: a segment whose total differs from the session → 409, nothing written, backend not called', () => {
  test('total mismatch', async () => {
    const id = sid('d3');
    const calls = gw.backend.calls.length;
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const res = await send(gw, segmentRequest(id, 5, 9, 12, 'WORLD'));
    expectPlainError(res, 409);
    expect(res.statusText).toBe('Conflict');
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello');
    expect(gw.backend.calls.length).toBe(calls);
    // Even a segment that would "complete" the wrong total changes nothing.
    expectPlainError(await send(gw, segmentRequest(id, 0, 4, 5, 'hello')), 409);
    expect(gw.backend.calls.length).toBe(calls);
    expect((await query(gw, id)).headers.range).toBe('0-4/10');
    // The session goes on with its own total.
    const done = await send(gw, segmentRequest(id, 5, 9, 10, 'world'));
    expect(done.status).toBe(200);
    expect(gw.backend.calls.length).toBe(calls + 1);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('helloworld');
  });
});

describe('D4: overlapping bytes are compared, not rewritten; in-flight overlaps → 503', () => {
  test('overlap with identical bytes is accepted and merged', async () => {
    const id = sid('d4');
    expect((await send(gw, segmentRequest(id, 0, 4, 20, 'hello'))).body.toString()).toBe('0-4/20');
    const res = await send(gw, segmentRequest(id, 3, 7, 20, 'lo w'.padEnd(5, 'o')));
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe('0-7/20');
    // The very same segment again (a client retry) is idempotent.
    expect((await send(gw, segmentRequest(id, 0, 4, 20, 'hello'))).body.toString()).toBe('0-7/20');
    expect(readFileSync(dataPath(gw, id)).subarray(0, 8).toString()).toBe('hello wo');
  });

  test('overlap with different bytes → 409, stored bytes and ranges unchanged', async () => {
    const id = sid('d4x');
    expect((await send(gw, segmentRequest(id, 0, 4, 20, 'hello'))).status).toBe(201);
    expect((await send(gw, segmentRequest(id, 10, 14, 20, 'ABCDE'))).status).toBe(201);
    const res = await send(gw, segmentRequest(id, 2, 6, 20, 'LLO W'));
    expectPlainError(res, 409);
    // A segment overlapping two acknowledged ranges, differing only in the second one.
    expectPlainError(await send(gw, segmentRequest(id, 3, 12, 20, 'lo_____ABX')), 409);
    const data = readFileSync(dataPath(gw, id));
    expect(data.subarray(0, 5).toString()).toBe('hello');
    expect(data.subarray(10, 15).toString()).toBe('ABCDE');
    expect((await query(gw, id)).headers.range).toBe('0-4/20,10-14/20');
    // Resending the same range with the right bytes works.
    expect((await send(gw, segmentRequest(id, 2, 6, 20, 'llo W'))).body.toString()).toBe('0-6/20,10-14/20');
  });

  test('a segment overlapping one still in flight → 503 + Retry-After; non-overlapping ones run in parallel', async () => {
    const id = sid('d4f');
    const body = Buffer.from('A'.repeat(10));
    const held = holdRequest(gw.port, segmentRequest(id, 0, 9, 30, body), segmentRequest(id, 0, 9, 30, body).length - 5);
    await held.connected;
    await sleep(300);
    const overlapping = await send(gw, segmentRequest(id, 5, 14, 30, 'A'.repeat(10)));
    expectPlainError(overlapping, 503);
    expect(overlapping.headers['retry-after']).toBe('1');
    // The same range again (a client that retried too early) is also refused for now.
    expectPlainError(await send(gw, segmentRequest(id, 0, 9, 30, body)), 503);
    // A disjoint segment of the same session is accepted while the first is still open.
    const disjoint = await send(gw, segmentRequest(id, 20, 29, 30, 'C'.repeat(10)));
    expect(disjoint.status).toBe(201);
    expect(disjoint.body.toString()).toBe('20-29/30');
    const first = await held.finish();
    expect(first.status).toBe(201);
    expect(first.body.toString()).toBe('0-9/30,20-29/30');
    // The retry after Retry-After succeeds: identical overlap, new bytes written.
    const retry = await send(gw, segmentRequest(id, 5, 14, 30, 'A'.repeat(10)));
    expect(retry.body.toString()).toBe('0-14/30,20-29/30');
  });
});

describe('D6: real size and hashes of the whole file for resumable uploads', () => {
  const file = randomBytes(30000);
  const expected = {
    md5: md5(file),
    sha1: createHash('sha1').update(file).digest('hex'),
    sha256: createHash('sha256').update(file).digest('hex'),
    crc32: zlib.crc32(file).toString(16).padStart(8, '0'),
    size: String(file.length),
  };
  const upload = async (id: string, order: Array<[number, number]>, extra: (i: number) => Array<[string, string]> = () => []) => {
    const statuses: number[] = [];
    for (const [i, [s, e]] of order.entries()) {
      statuses.push((await send(gw, segmentRequest(id, s, e, file.length, file.subarray(s, e + 1), extra(i)))).status);
    }
    return statuses;
  };
  const checkFields = (call: BackendCall) => {
    for (const [name, value] of Object.entries(expected)) expect([name, gw.backend.field(call, name)]).toEqual([name, value]);
  };

  test('out-of-order segments', async () => {
    const id = sid('d6o');
    expect(await upload(id, [[20000, 29999], [0, 9999], [10000, 19999]])).toEqual([201, 201, 200]);
    checkFields(lastCall(gw));
    expect(readFileSync(dataPath(gw, id)).equals(file)).toBe(true);
  });

  test('in-order segments', async () => {
    const id = sid('d6i');
    expect(await upload(id, [[0, 9999], [10000, 19999], [20000, 29999]])).toEqual([201, 201, 200]);
    checkFields(lastCall(gw));
  });

  test('in order, then a gap filled later, with overlapping retries', async () => {
    const id = sid('d6m');
    expect(await upload(id, [[0, 9999], [0, 4999], [20000, 29999], [5000, 14999], [10000, 19999]])).toEqual([201, 201, 201, 201, 200]);
    checkFields(lastCall(gw));
  });

  test('a failed segment in the middle (checksum mismatch, other bytes) does not spoil the hashes', async () => {
    const id = sid('d6f');
    expect(await upload(id, [[0, 9999]])).toEqual([201]);
    const garbage = randomBytes(10000);
    const wrongMd5 = createHash('md5').update(file.subarray(10000, 20000)).digest('base64');
    const bad = await send(gw, segmentRequest(id, 10000, 19999, file.length, garbage, [['Content-MD5', wrongMd5]]));
    expectPlainError(bad, 460);
    expect(await upload(id, [[10000, 19999], [20000, 29999]])).toEqual([201, 200]);
    checkFields(lastCall(gw));
    expect(readFileSync(dataPath(gw, id)).equals(file)).toBe(true);
  });

  test('a single segment covering the whole file', async () => {
    const id = sid('d6s');
    expect(await upload(id, [[0, 29999]])).toEqual([200]);
    checkFields(lastCall(gw));
  });
});

describe('D7: completion is exactly-once; an unreachable backend keeps the upload for a retry', () => {
  test('a repeated final segment gets the stored answer without a second hand-off', async () => {
    const id = sid('d7');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const first = await send(gw, segmentRequest(id, 5, 9, 10, 'world'));
    expect(first.status).toBe(200);
    const calls = gw.backend.calls.length;
    const again = await send(gw, segmentRequest(id, 5, 9, 10, 'world'));
    expect(again.status).toBe(200);
    expect(again.statusText).toBe(first.statusText);
    expect(again.body.toString()).toBe(first.body.toString());
    expect(again.headers['x-capture-id']).toBe(first.headers['x-capture-id']);
    expect(again.headers['content-type']).toBe(first.headers['content-type']);
    // Any identical segment of the completed upload is answered the same way.
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).headers['x-capture-id']).toBe(first.headers['x-capture-id']);
    // Different bytes for an acknowledged range of a completed upload: 409, nothing changes.
    expectPlainError(await send(gw, segmentRequest(id, 5, 9, 10, 'WORLD')), 409);
    expect(gw.backend.calls.length).toBe(calls);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('helloworld');
  });

  test('a repeat while the hand-off is still running → 503 + Retry-After, then the stored answer', async () => {
    const id = sid('d7r');
    gw.backend.delayMs = 600;
    try {
      const pending = send(gw, segmentRequest(id, 0, 9, 10, '0123456789'));
      await sleep(250);
      const early = await send(gw, segmentRequest(id, 0, 9, 10, '0123456789'));
      expectPlainError(early, 503);
      expect(early.headers['retry-after']).toBeDefined();
      const first = await pending;
      expect(first.status).toBe(200);
      const calls = gw.backend.calls.length;
      const late = await send(gw, segmentRequest(id, 0, 9, 10, '0123456789'));
      expect(late.status).toBe(200);
      expect(late.headers['x-capture-id']).toBe(first.headers['x-capture-id']);
      expect(gw.backend.calls.length).toBe(calls);
    } finally {
      gw.backend.delayMs = 0;
    }
  });

  test('backend unreachable → 503 + Retry-After, file and state kept; the retry hands off exactly once', async () => {
    const own = await startTestGateway();
    try {
      const id = sid('d7u');
      const backendPort = own.backend.port;
      expect((await send(own, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
      await own.backend.stop();
      const res = await send(own, segmentRequest(id, 5, 9, 10, 'world'));
      expectPlainError(res, 503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(readFileSync(dataPath(own, id)).toString()).toBe('helloworld');
      expect(stateFiles(own, id)).not.toEqual([]);
      const status = await query(own, id);
      expect(status.status).toBe(200);
      expect(status.headers.range).toBe('0-9/10');
      // Still down: the retry gets 503 again and keeps everything.
      expectPlainError(await send(own, segmentRequest(id, 5, 9, 10, 'world')), 503);
      await own.backend.start(backendPort);
      const retry = await send(own, segmentRequest(id, 5, 9, 10, 'world'));
      expect(retry.status).toBe(200);
      expect(own.backend.calls).toHaveLength(1);
      expect(own.backend.field(own.backend.calls[0], 'size')).toBe('10');
      expect(own.backend.field(own.backend.calls[0], 'md5')).toBe(md5(Buffer.from('helloworld')));
      // Retrying once more is a replay.
      expect((await send(own, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(200);
      expect(own.backend.calls).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  test('a backend that does not answer within proxy_read_timeout → 503 + Retry-After, the upload kept', async () => {
    const own = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    proxy_read_timeout 300ms;` });
    try {
      const id = sid('d7t');
      own.backend.delayMs = 2000;
      const res = await send(own, segmentRequest(id, 0, 4, 5, 'hello'));
      expectPlainError(res, 503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(readFileSync(dataPath(own, id)).toString()).toBe('hello');
      own.backend.delayMs = 0;
      const retry = await send(own, segmentRequest(id, 0, 4, 5, 'hello'));
      expect(retry.status).toBe(200);
      // The timed-out hand-off did reach the backend: a timeout cannot be exactly-once.
      expect(own.backend.calls.length).toBeGreaterThanOrEqual(1);
      const calls = own.backend.calls.length;
      expect((await send(own, segmentRequest(id, 0, 4, 5, 'hello'))).status).toBe(200);
      expect(own.backend.calls.length).toBe(calls);
    } finally {
      await own.close();
    }
  });

  test('upload_pass at a closed port → 503 + Retry-After (not 502), the upload kept', async () => {
    const own = await startTestGateway({ locationBody: DEFAULT_LOCATION.replace('http://__BACKEND__', 'http://127.0.0.1:9') });
    try {
      const id = sid('d7c');
      const res = await send(own, segmentRequest(id, 0, 4, 5, 'hello'));
      expectPlainError(res, 503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(readFileSync(dataPath(own, id)).toString()).toBe('hello');
      expect((await query(own, id)).headers.range).toBe('0-4/5');
    } finally {
      await own.close();
    }
  });
});

describe('D8: a client disconnect mid-segment never deletes acknowledged bytes (400 in upload_cleanup)', () => {
  test('disconnect, then resend the segment', async () => {
    const id = sid('d8');
    const second = randomBytes(100000);
    const total = 5 + second.length;
    expect((await send(gw, segmentRequest(id, 0, 4, total, 'hello'))).status).toBe(201);
    const request = segmentRequest(id, 5, total - 1, total, second);
    const held = holdRequest(gw.port, request, request.length - 50000);
    await held.connected;
    await sleep(300);
    held.abort();
    await sleep(300);
    // The acknowledged bytes and the state are intact; the failed segment is not recorded.
    expect(readFileSync(dataPath(gw, id)).subarray(0, 5).toString()).toBe('hello');
    expect((await query(gw, id)).headers.range).toBe(`0-4/${total}`);
    const res = await send(gw, request);
    expect(res.status).toBe(200);
    const whole = Buffer.concat([Buffer.from('hello'), second]);
    expect(readFileSync(dataPath(gw, id)).equals(whole)).toBe(true);
    expect(gw.backend.field(lastCall(gw), 'md5')).toBe(md5(whole));
  });
});

describe('D8: a client disconnect before the body is read', () => {
  // Regression (fixed): when the connection is gone before the handler reaches receiveBody() (it first awaits
  // the session lock, the state store and the data file), the request's 'close' event has
  // already been emitted and receiveBody() waits for it forever: the handler hangs, the
  // segment's reservation is never released (every overlapping retry → 503 until a restart) and
  // an unranged upload's file is never removed. Fixed in (src/upload/receive-body.ts):
  // settle at once when the request is already destroyed.
  test('a segment whose client vanished at once does not block its range', async () => {
    const id = sid('d8a');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    const request = segmentRequest(id, 5, 9, 10, 'world');
    const socket = net.connect(gw.port, '127.0.0.1', () => {
      socket.write(request.subarray(0, request.length - 3));
      socket.destroy();
    });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.on('close', resolve));
    await sleep(300);
    expect((await query(gw, id)).headers.range).toBe('0-4/10');
    const res = await send(gw, request);
    expect(res.status).toBe(200);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('helloworld');
  });

  // Regression (fixed): same cause (the unranged upload's partial file stays in the store for ever).
  test('an unranged upload whose client vanished at once leaves no file', async () => {
    const before = listFiles(gw.store);
    const request = httpRequest('POST', '/upload', [['Content-Type', 'application/octet-stream'], ['Content-Disposition', 'attachment; filename="v.txt"']], 'hello world');
    const socket = net.connect(gw.port, '127.0.0.1', () => {
      socket.write(request.subarray(0, request.length - 3));
      socket.destroy();
    });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.on('close', resolve));
    // The 400 may come from the HTTP layer before the handler is done: give it time to clean up.
    await sleep(300);
    for (let i = 0; i < 20 && listFiles(gw.store).length !== before.length; i++) await sleep(50);
    expect(listFiles(gw.store)).toEqual(before);
  });
});

describe('D9: a completed session is remembered for the retention time, then its id starts afresh', () => {
  let own: TestGateway;
  beforeAll(async () => {
    own = await startTestGateway({ locationBody: DEFAULT_LOCATION.replace('upload_completed_retention 60s;', 'upload_completed_retention 1s;') });
  });
  afterAll(async () => {
    await own?.close();
  });

  test('reuse during the retention time is refused or replayed; afterwards a new upload starts from an empty file', async () => {
    const id = sid('d9');
    expect((await send(own, segmentRequest(id, 0, 9, 10, '0123456789'))).status).toBe(200);
    expect(own.backend.calls).toHaveLength(1);
    // Within the retention time: another upload with that id is refused, a repeat is replayed.
    expectPlainError(await send(own, segmentRequest(id, 0, 3, 4, 'abcd')), 409);
    expect((await send(own, segmentRequest(id, 0, 9, 10, '0123456789'))).status).toBe(200);
    expect(own.backend.calls).toHaveLength(1);
    await sleep(1200);
    const fresh = await send(own, segmentRequest(id, 0, 3, 4, 'abcd'));
    expect(fresh.status).toBe(200);
    expect(own.backend.calls).toHaveLength(2);
    expect(own.backend.field(own.backend.calls[1], 'size')).toBe('4');
    // Q10 fixed: no stale tail of the old upload.
    expect(readFileSync(dataPath(own, id)).toString()).toBe('abcd');
  });

  test('a partial new upload after the retention time also starts from an empty file', async () => {
    const id = sid('d9p');
    expect((await send(own, segmentRequest(id, 0, 9, 10, '0123456789'))).status).toBe(200);
    await sleep(1200);
    const res = await send(own, segmentRequest(id, 2, 3, 8, 'cd'));
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe('2-3/8');
    expect(readFileSync(dataPath(own, id)).equals(Buffer.from('\0\0cd'))).toBe(true);
  });

  const singleShot = (id: string, body: string) => httpRequest('POST', '/upload', [
    ['Content-Type', 'application/octet-stream'],
    ['Content-Disposition', 'attachment; filename="single.txt"'],
    ['Session-ID', id],
  ], body);

  test('a single-shot upload (Session-ID, no range) with the id of an upload in progress → 409', async () => {
    const id = sid('d9i');
    expect((await send(own, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    expectPlainError(await send(own, singleShot(id, 'other')), 409);
    expect(readFileSync(dataPath(own, id)).toString()).toBe('hello');
  });

  // Regression (fixed): a single-shot upload (Session-ID, no Content-Range) with the id of a session completed
  // within upload_completed_retention is accepted and truncates the completed file, while the
  // session still says "complete 0-9/10" and replays the old answer: the replay of the final
  // segment then fails with 409 (its bytes "differ"), and the file the backend was told about is
  // gone. A ranged reuse gets 409 in the same situation (D9). Fixed in
  // (src/upload/raw-upload.ts, handleWholeFile): refuse with 409 while the completed session is
  // retained.
  test('a single-shot upload never overwrites a completed upload during the retention time', async () => {
    const id = sid('d9c');
    expect((await send(own, segmentRequest(id, 0, 9, 10, '0123456789'))).status).toBe(200);
    const res = await send(own, singleShot(id, 'abcd'));
    expect(res.status).toBe(409);
    expect(readFileSync(dataPath(own, id)).toString()).toBe('0123456789');
    expect((await send(own, segmentRequest(id, 0, 9, 10, '0123456789'))).status).toBe(200);
  });

  // Regression (fixed): a single-shot upload with the id of an expired but not yet swept incomplete session is
  // written into the session's file and handed to the backend (200); the next expiry sweep then
  // removes that file as the expired session's data. An upload the backend accepted is lost.
  // Fixed in: the same place as above expires the stale session first.
  test('a single-shot upload over an expired, not yet swept session survives the sweep', async () => {
    // Without the periodic sweep, so that the session is certainly still there, expired.
    const quiet = await startTestGateway({ locationBody: DEFAULT_LOCATION.replace('upload_completed_retention 60s;', 'upload_session_timeout 1s;'), sweep: false });
    try {
      const id = sid('d9e');
      expect((await send(quiet, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
      await sleep(1200);
      const res = await send(quiet, singleShot(id, 'single shot'));
      expect(res.status).toBe(200);
      expect(quiet.backend.field(lastCall(quiet), 'path')).toBe(dataPath(quiet, id));
      await quiet.gateway.sweepExpired();
      expect(existsSync(dataPath(quiet, id))).toBe(true);
      expect(readFileSync(dataPath(quiet, id)).toString()).toBe('single shot');
    } finally {
      await quiet.close();
    }
  });
});

describe('D10: Session-ID is 1–200 of [A-Za-z0-9_-] (configurable), trimmed; else 400, never 5xx', () => {
  test('length limit 200 by default', async () => {
    const ok = 'a'.repeat(199) + 'Z';
    expect((await send(gw, segmentRequest(ok, 0, 4, 10, 'hello'))).status).toBe(201);
    for (const length of [201, 250, 256, 300]) {
      expectPlainError(await send(gw, segmentRequest('b'.repeat(length), 0, 4, 10, 'hello')), 400);
    }
    expectPlainError(await query(gw, 'c'.repeat(201)), 400);
  });

  test('every allowed character; case-sensitive ids', async () => {
    const id = `AZaz09_-${process.pid}`;
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    expect((await query(gw, id.toLowerCase())).status).toBe(404);
    expect((await query(gw, id)).headers.range).toBe('0-4/10');
  });

  test('surrounding whitespace is trimmed, inner whitespace is refused', async () => {
    const id = sid('d10w');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="w.bin"'],
      ['X-Content-Range', 'bytes 0-4/10'],
      ['Session-ID', `  \t${id}\t `],
    ], 'hello'));
    expect(res.status).toBe(201);
    expect((await query(gw, id)).headers.range).toBe('0-4/10');
    expect(existsSync(dataPath(gw, id))).toBe(true);
    for (const bad of [`${id} x`, `${id}\tx`]) expectPlainError(await send(gw, segmentRequest(bad, 0, 4, 10, 'hello')), 400);
  });

  test('two Session-ID headers: the last one is used (§3.1)', async () => {
    const a = sid('d10a');
    const b = sid('d10b');
    const res = await send(gw, segmentRequest(a, 0, 4, 10, 'hello', [['X-Session-ID', b]]));
    expect(res.status).toBe(201);
    expect((await query(gw, b)).status).toBe(200);
    expect((await query(gw, a)).status).toBe(404);
  });

  test('upload_session_id_max_length', async () => {
    const own = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    upload_session_id_max_length 8;` });
    try {
      expect((await send(own, segmentRequest('abcdefgh', 0, 4, 10, 'hello'))).status).toBe(201);
      const res = await send(own, segmentRequest('abcdefghi', 0, 4, 10, 'hello'));
      expectPlainError(res, 400);
      expect(res.body.toString()).toMatch(/8/);
      expect(existsSync(dataPath(own, 'abcdefghi'))).toBe(false);
    } finally {
      await own.close();
    }
  });

  // Regression (fixed): the configuration accepts upload_session_id_max_length up to 240, but ids of 228–240
  // characters are answered 500 "internal error": the file state store writes its record through a
  // temporary file named `<id>.state.json.<12 hex>.tmp`, 28 characters longer than the id, which
  // passes the file system's 255-byte name limit (ENAMETOOLONG, not mapped to an HttpError).
  // Fixed in (src/state/file-session-store.ts): a short temporary name.
  test('ids up to the configured maximum of 240 work', async () => {
    const own = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    upload_session_id_max_length 240;` });
    try {
      for (const length of [227, 228, 240]) {
        const id = 'L'.repeat(length - 1) + 'z';
        const res = await send(own, segmentRequest(id, 0, 4, 10, 'hello'));
        expect([length, res.status, res.body.toString()]).toEqual([length, 201, '0-4/10']);
        expect((await query(own, id)).headers.range).toBe('0-4/10');
      }
      expectPlainError(await send(own, segmentRequest('L'.repeat(241), 0, 4, 10, 'hello')), 400);
    } finally {
      await own.close();
    }
  });
});

describe('D11: Content-Disposition is parsed as real parameters', () => {
  const cases: Array<[string, string, string]> = [
    // value, file name, field name
    ['attachment; filename="big.TXT"', 'big.TXT', ''],
    ['attachment; filename=unq.txt', 'unq.txt', ''],
    ['attachment; filename=a b.txt', 'a b.txt', ''],
    ['attachment; filename="a;b.txt"', 'a;b.txt', ''],
    ['attachment; filename="q\\"x.txt"', 'q"x.txt', ''],
    ["attachment; filename*=UTF-8''na%C3%AFve%20file.txt", Buffer.from('naïve file.txt', 'utf8').toString('latin1'), ''],
    ["attachment; filename=\"fallback.txt\"; filename*=utf-8''%E2%82%AC.txt", Buffer.from('€.txt', 'utf8').toString('latin1'), ''],
    ['attachment; filename="C:\\Docs and Settings\\Pics\\p.jpg"', 'p.jpg', ''],
    ['attachment; filename="/etc/passwd"', 'passwd', ''],
    ['attachment; filename="/passwd"', 'passwd', ''],
    ['attachment; filename="a/b\\c"', 'c', ''],
    ['attachment, filename="comma.txt"', 'comma.txt', ''],
    ['form-data; name="upfile[]"; filename="C:\\x\\y\\my file.txt"', 'my file.txt', 'upfile[]'],
    ['form-data; filename="ff.txt"; name="nm"', 'ff.txt', 'nm'],
    ['form-data; filename="C:\\dir\\a.txt"; name="f"', 'a.txt', 'f'],
    ['attachment;filename="a/b/c.txt"', 'c.txt', ''],
    ['ATTACHMENT; FILENAME="up.txt"', 'up.txt', ''],
    ['Form-Data; Name="n"; Filename="x.bin"', 'x.bin', 'n'],
    ['attachment', '', ''],
    ['attachment; filename=', '', ''],
    ['attachment; filename="', '', ''],
  ];

  test.each(cases)('%s', async (disposition, fileName, fieldName) => {
    const id = sid('d11');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', disposition],
      ['X-Content-Range', 'bytes 0-1/2'],
      ['Session-ID', id],
    ], 'ok'));
    expect(res.status).toBe(200);
    const call = lastCall(gw);
    expect(gw.backend.field(call, 'name')).toBe(fileName);
    expect(gw.backend.field(call, 'field')).toBe(fieldName);
    // The client's header is forwarded untouched.
    const i = call.rawHeaders.findIndex((h) => h.toLowerCase() === 'content-disposition');
    expect(call.rawHeaders[i + 1]).toBe(disposition);
  });
});

describe('D12: header names match exactly (case-insensitive), never by prefix', () => {
  test('Content-Dispositionfoo is not a Content-Disposition → 415', async () => {
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Dispositionfoo', 'attachment; filename="q"'],
    ], 'hello'));
    expectPlainError(res, 415);
  });

  test('Session-IDs / X-Content-Rangexyz are ignored: a single-shot upload with a 10-digit name', async () => {
    const id = sid('d12');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="p.bin"'],
      ['Session-IDs', id],
      ['X-Session-IDx', id],
      ['X-Content-Rangexyz', 'bytes 0-4/10'],
      ['Content-Ranges', 'bytes 0-4/10'],
    ], 'hello'));
    expect(res.status).toBe(200);
    const file = gw.backend.field(lastCall(gw), 'path')!;
    expect(path.basename(file)).toMatch(/^\d{10}$/);
    expect(readFileSync(file).toString()).toBe('hello');
    expect(gw.backend.field(lastCall(gw), 'size')).toBe('5');
    expect((await query(gw, id)).status).toBe(404);
  });

  test('a prefixed range header with a real Session-ID: a single-shot upload into the session file', async () => {
    const id = sid('d12s');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="p.bin"'],
      ['Session-ID', id],
      ['Content-Rangex', 'bytes 0-4/10'],
    ], 'hello'));
    expect(res.status).toBe(200);
    expect(gw.backend.field(lastCall(gw), 'path')).toBe(dataPath(gw, id));
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello');
  });
});

describe('D13: range numbers must be written out and ≤ 2^53−1', () => {
  test.each([
    'bytes -3/4',
    'bytes 0-/4',
    'bytes 0-3/',
    'bytes -/',
    'bytes 0-3/9007199254740992',
    'bytes 0-3/9223372036854775808',
    'bytes 0-3/18446744073709551621',
    'bytes 18446744073709551616-18446744073709551619/18446744073709551620',
    'bytes 9007199254740992-9007199254740995/9007199254740999',
  ])('%s → 400', async (range) => {
    const id = sid('d13');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="r.bin"'],
      ['X-Content-Range', range],
      ['Session-ID', id],
    ], 'abcd'));
    expectPlainError(res, 400);
    expect(existsSync(dataPath(gw, id))).toBe(false);
    expect(stateFiles(gw, id)).toEqual([]);
  });

  test('2^53−1 is accepted; leading zeros and the unit\'s case are the module\'s; a total the store cannot hold is 413 before any write (D30)', async () => {
    const limit = await probeMaxFileSize(gw.store);
    const id = sid('d13ok');
    const big = await send(gw, segmentRequest(id, 0, 3, 9007199254740991, 'abcd'));
    if (limit >= 9007199254740991) {
      expect(big.status).toBe(201);
      expect(big.body.toString()).toBe('0-3/9007199254740991');
    } else {
      // D30: the file system of this store (ext4: 16 TiB) cannot hold the file: refused at once.
      expectPlainError(big, 413);
      expect(big.body.toString()).toMatch(/file system can hold/);
      expect(existsSync(dataPath(gw, id))).toBe(false);
      // The largest total it can hold is accepted.
      const atLimit = await send(gw, segmentRequest(sid('d13lim'), 0, 3, limit, 'abcd'));
      expect(atLimit.status).toBe(201);
      expect(atLimit.body.toString()).toBe(`0-3/${limit}`);
    }
    const id2 = sid('d13z');
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="r.bin"'],
      ['X-Content-Range', 'BYTES 00-04/010'],
      ['Session-ID', id2],
    ], 'hello'));
    expect(res.status).toBe(201);
    expect(res.headers.range).toBe('0-4/10');
  });
});

describe('D14: every error is a text/plain one-line reason with the module\'s status code', () => {
  let limited: TestGateway;
  beforeAll(async () => {
    limited = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    upload_max_file_size 10;` });
  });
  afterAll(async () => {
    await limited?.close();
  });

  test('status codes and reason phrases', async () => {
    const id = sid('d14');
    await send(gw, segmentRequest(id, 0, 4, 10, 'hello'));
    const md5Of = (s: string) => createHash('md5').update(s).digest('base64');
    const cases: Array<[number, string, () => Promise<RawResponse>]> = [
      [400, 'Bad Request', () => send(gw, segmentRequest('a.b', 0, 4, 10, 'hello'))],
      [400, 'Bad Request', () => send(gw, httpRequest('POST', '/upload', [['Content-Disposition', 'attachment']], 'hello'))],
      [404, 'Not Found', () => query(gw, 'unknown-session')],
      [404, 'Not Found', () => send(gw, httpRequest('POST', '/elsewhere', [['Content-Type', 'text/plain']], 'x'))],
      [405, 'Not Allowed', () => send(gw, httpRequest('PUT', '/upload', [['Content-Type', 'text/plain']], 'x'))],
      [405, 'Not Allowed', () => send(gw, httpRequest('GET', '/upload', []))],
      [409, 'Conflict', () => send(gw, segmentRequest(id, 5, 9, 11, 'world'))],
      [413, 'Request Entity Too Large', () => send(limited, segmentRequest(sid('d14'), 0, 4, 11, 'hello'))],
      // §3.4: the 413 check comes before the 416 check.
      [413, 'Request Entity Too Large', () => send(limited, segmentRequest(sid('d14'), 0, 4, 11, 'hell'))],
      [415, 'Unsupported Media Type', () => send(gw, httpRequest('POST', '/upload', [['Content-Type', 'application/octet-stream']], 'hello'))],
      [416, 'Requested Range Not Satisfiable', () => send(gw, segmentRequest(sid('d14'), 0, 4, 10, 'hell'))],
      [460, 'Checksum Mismatch', () => send(gw, segmentRequest(sid('d14'), 0, 4, 10, 'hello', [['Content-MD5', md5Of('HELLO')]]))],
    ];
    for (const [status, phrase, run] of cases) {
      const res = await run();
      expect([status, res.status, res.statusText]).toEqual([status, status, phrase]);
      expectPlainError(res, status);
    }
  });

  test('HEAD errors have the status and headers but no body', async () => {
    for (const [status, request] of [
      [404, httpRequest('HEAD', '/upload', [['Session-ID', 'nobody-here']])],
      [400, httpRequest('HEAD', '/upload', [['Session-ID', 'a.b']])],
      [405, httpRequest('HEAD', '/upload', [])],
      [404, httpRequest('HEAD', '/nowhere', [])],
    ] as Array<[number, Buffer]>) {
      const res = await exchange(gw.port, [request], { head: true });
      expect(res.finals).toHaveLength(1);
      expect(res.finals[0].status).toBe(status);
      expect(res.finals[0].headers['content-type']).toBe('text/plain; charset=utf-8');
      // Nothing after the header block.
      expect(res.raw.length).toBe(res.raw.indexOf('\r\n\r\n') + 4);
      expect(res.closed).toBe(true);
    }
  });
});

describe('D17: HTTP framing is respected: pipelined bytes after a raw body are not written into the file', () => {
  test('unranged upload followed by a pipelined request', async () => {
    const first = httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="p.txt"'],
      ['Connection', 'keep-alive'],
    ], 'hello');
    const next = httpRequest('GET', '/upload', [['Session-ID', 'nobody-pipelined']]);
    const res = await exchange(gw.port, [Buffer.concat([first, next])]);
    expect(res.finals.map((r) => r.status)).toEqual([200, 404]);
    const file = gw.backend.field(lastCall(gw), 'path')!;
    expect(readFileSync(file).toString()).toBe('hello');
    expect(gw.backend.field(lastCall(gw), 'size')).toBe('5');
  });

  test('a segment followed by a pipelined request', async () => {
    const id = sid('d17');
    const a = segmentRequest(id, 0, 4, 10, 'hello', [['Connection', 'keep-alive']]);
    const res = await exchange(gw.port, [Buffer.concat([a, Buffer.from(PIPELINED)])]);
    expect(res.finals.map((r) => r.status)).toEqual([201, 404]);
    expect(res.finals[0].body.toString()).toBe('0-4/10');
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello');
  });

  // Regression (fixed): node:http hands pipelined requests to the app at once, so the gateway runs them in
  // parallel; RFC 9112 §9.3.2 allows that for safe methods only. A client that pipelines a
  // retried segment gets "503 overlaps a segment still in flight" for its own, sequential
  // requests, and two pipelined segments can complete in either order (the first request can get
  // the backend's answer and the last one a 201). nginx handles them one after the other.
  // Fixed in (src/http/server.ts): serialize requests per connection.
  test('pipelined segments are handled in order, one after the other', async () => {
    const id = sid('d17p');
    const a = segmentRequest(id, 0, 4, 10, 'hello', [['Connection', 'keep-alive']]);
    const retry = segmentRequest(id, 0, 4, 10, 'hello', [['Connection', 'keep-alive']]);
    const query = httpRequest('GET', '/upload', [['Session-ID', id]]);
    const res = await exchange(gw.port, [Buffer.concat([a, retry, query])]);
    expect(res.finals.map((r) => [r.status, r.body.toString()])).toEqual([[201, '0-4/10'], [201, '0-4/10'], [200, '0-4/10']]);
  });

  test('trailing garbage after a Connection: close request is ignored', async () => {
    const id = sid('d17c');
    const res = await exchange(gw.port, [Buffer.concat([segmentRequest(id, 0, 4, 10, 'hello'), Buffer.from('GARBAGE GET / HTTP/1.1\r\n\r\n')])]);
    expect(res.finals.map((r) => r.status)).toEqual([201]);
    const data = readFileSync(dataPath(gw, id));
    expect(data.toString()).toBe('hello');
    expect(statSync(dataPath(gw, id)).size).toBe(5);
  });
});

describe('D18: chunked segment bodies are accepted; the byte count must equal the range length', () => {
  const chunked = (chunks: string[]): Buffer => Buffer.from(chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('') + '0\r\n\r\n', 'latin1');

  test('chunked segments complete an upload', async () => {
    const id = sid('d18');
    const te: Array<[string, string]> = [['Transfer-Encoding', 'chunked']];
    const a = await send(gw, segmentRequest(id, 0, 9, 16, chunked(['0123', '456789']), te));
    expect(a.status).toBe(201);
    expect(a.body.toString()).toBe('0-9/16');
    const b = await send(gw, segmentRequest(id, 10, 15, 16, chunked(['a', 'b', 'cdef']), te));
    expect(b.status).toBe(200);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('0123456789abcdef');
    expect(gw.backend.field(lastCall(gw), 'size')).toBe('16');
  });

  test('a chunked body with the wrong byte count → 416, nothing recorded', async () => {
    const id = sid('d18x');
    const te: Array<[string, string]> = [['Transfer-Encoding', 'chunked']];
    expect((await send(gw, segmentRequest(id, 0, 3, 12, 'abcd'))).status).toBe(201);
    expectPlainError(await send(gw, segmentRequest(id, 4, 7, 12, chunked(['efg']), te)), 416);
    expectPlainError(await send(gw, segmentRequest(id, 4, 7, 12, chunked(['ef', 'ghi']), te)), 416);
    expectPlainError(await send(gw, segmentRequest(id, 4, 7, 12, chunked([]), te)), 416);
    expect((await query(gw, id)).headers.range).toBe('0-3/12');
    expect(readFileSync(dataPath(gw, id)).subarray(0, 4).toString()).toBe('abcd');
  });
});

describe('D19: both spellings of upload_empty_fiels_names are accepted', () => {
  const conf = (directive: string) => `listen 127.0.0.1:1;\nlocation /u {\n  upload_pass http://127.0.0.1:2;\n  ${directive} on;\n}\n`;
  test.each(['upload_empty_fiels_names', 'upload_empty_field_names'])('%s', (directive) => {
    const config = parseConfig(conf(directive), 'd19.conf');
    expect(config.locations[0].emptyFieldNames).toBe(true);
  });

  test('a gateway starts with the misspelled one', async () => {
    const own = await startTestGateway({ locationBody: `${DEFAULT_LOCATION}\n    upload_empty_fiels_names on;` });
    try {
      expect((await send(own, segmentRequest(sid('d19'), 0, 1, 2, 'ok'))).status).toBe(200);
    } finally {
      await own.close();
    }
  });
});

describe('D20: configuration mistakes are refused at start-up with the file, line and reason', () => {
  const attempt = (text: string): ConfigError => {
    try {
      parseConfig(text, 'gateway-d20.conf');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('the configuration was accepted');
  };

  test('an unknown directive', () => {
    const err = attempt('listen 127.0.0.1:1;\nlocation /u {\n  upload_pass http://127.0.0.1:2;\n  upload_frobnicate on;\n}\n');
    expect(err.file).toBe('gateway-d20.conf');
    expect(err.line).toBe(4);
    expect(err.message).toMatch(/^gateway-d20\.conf:4: .*upload_frobnicate/);
  });

  test('an upload_cleanup code outside 200–599 (the module would start and misbehave)', () => {
    const err = attempt('listen 127.0.0.1:1;\nlocation /u {\n  upload_pass http://127.0.0.1:2;\n\n  upload_cleanup 400 600;\n}\n');
    expect(err.line).toBe(5);
    expect(err.message).toMatch(/^gateway-d20\.conf:5: .*600/);
  });

  test('an empty upload_pass (Q27)', () => {
    const err = attempt('listen 127.0.0.1:1;\nlocation /u {\n  upload_pass "";\n}\n');
    expect(err.line).toBe(3);
    expect(err.reason).toMatch(/upload_pass/);
  });
});

describe('D21: Content-MD5 / Repr-Digest / Digest are verified while streaming', () => {
  const b64 = (algorithm: string, data: string) => createHash(algorithm).update(data).digest('base64');

  test('matching checksums are accepted', async () => {
    const id = sid('d21');
    const headers: Array<Array<[string, string]>> = [
      [['Content-MD5', b64('md5', 'hello')]],
      [['Repr-Digest', `sha-256=:${b64('sha256', ' worl')}:`]],
      [['Digest', `sha-256=${b64('sha256', 'd!!')}`]],
    ];
    expect((await send(gw, segmentRequest(id, 0, 4, 13, 'hello', headers[0]))).status).toBe(201);
    expect((await send(gw, segmentRequest(id, 5, 9, 13, ' worl', headers[1]))).status).toBe(201);
    expect((await send(gw, segmentRequest(id, 10, 12, 13, 'd!!', headers[2]))).status).toBe(200);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello world!!');
  });

  test('a mismatch → 460, nothing recorded; the right bytes are accepted afterwards', async () => {
    const id = sid('d21x');
    expect((await send(gw, segmentRequest(id, 0, 4, 10, 'hello'))).status).toBe(201);
    for (const header of [
      ['Content-MD5', b64('md5', 'world')],
      ['Repr-Digest', `sha-256=:${b64('sha256', 'world')}:`],
      ['Digest', `SHA-256=${b64('sha256', 'world')}`],
    ] as Array<[string, string]>) {
      const res = await send(gw, segmentRequest(id, 5, 9, 10, 'WORLD', [header]));
      expectPlainError(res, 460);
      expect(res.statusText).toBe('Checksum Mismatch');
      expect((await query(gw, id)).headers.range).toBe('0-4/10');
    }
    const calls = gw.backend.calls.length;
    // The failed bytes were not acknowledged: different bytes for that range are fine now.
    const res = await send(gw, segmentRequest(id, 5, 9, 10, 'world', [['Content-MD5', b64('md5', 'world')]]));
    expect(res.status).toBe(200);
    expect(gw.backend.calls.length).toBe(calls + 1);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('helloworld');
  });

  test('a mismatch on an unranged upload → 460, no file kept, backend not called', async () => {
    const before = listFiles(gw.store);
    const calls = gw.backend.calls.length;
    const res = await send(gw, httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="c.bin"'],
      ['Content-MD5', b64('md5', 'other')],
    ], 'hello'));
    expectPlainError(res, 460);
    expect(listFiles(gw.store)).toEqual(before);
    expect(gw.backend.calls.length).toBe(calls);
  });

  test.each([
    ['Content-MD5', 'not base64!'],
    ['Content-MD5', Buffer.from('short').toString('base64')],
    ['Repr-Digest', `sha-256=${b64('sha256', 'hello')}`],
    ['Repr-Digest', 'sha-256=:!!:'],
    ['Digest', 'sha-256=abc'],
  ])('malformed %s %s → 400, nothing recorded', async (name, value) => {
    const id = sid('d21m');
    const res = await send(gw, segmentRequest(id, 0, 4, 10, 'hello', [[name, value]]));
    expectPlainError(res, 400);
    expect(existsSync(dataPath(gw, id))).toBe(false);
    expect((await query(gw, id)).status).toBe(404);
  });
});

describe('D22: status query GET/HEAD with Session-ID', () => {
  test('GET and HEAD report the ranges and the total; unknown → 404', async () => {
    const id = sid('d22');
    await send(gw, segmentRequest(id, 0, 4, 12, 'hello'));
    await send(gw, segmentRequest(id, 9, 11, 12, '!!!'));
    const get = await query(gw, id);
    expect(get.status).toBe(200);
    expect(get.headers.range).toBe('0-4/12,9-11/12');
    expect(get.body.toString()).toBe('0-4/12,9-11/12');
    expect(get.headers['x-upload-total']).toBe('12');
    const viaX = await query(gw, id, 'GET', 'X-Session-ID');
    expect(viaX.headers.range).toBe('0-4/12,9-11/12');
    const head = await exchange(gw.port, [httpRequest('HEAD', '/upload', [['Session-ID', id]])], { head: true });
    expect(head.finals[0].status).toBe(200);
    expect(head.finals[0].headers.range).toBe('0-4/12,9-11/12');
    expect(head.finals[0].headers['x-upload-total']).toBe('12');
    expect(head.raw.length).toBe(head.raw.indexOf('\r\n\r\n') + 4);
    expect((await query(gw, sid('d22none'))).status).toBe(404);
    expect((await query(gw, sid('d22none'), 'HEAD')).status).toBe(404);
    // A query changes nothing.
    expect((await send(gw, segmentRequest(id, 5, 8, 12, ' wor'))).status).toBe(200);
  });

  test('the query is never truncated, even when the 201 is (Q7)', async () => {
    const id = sid('d22t');
    const total = 1000;
    let last: RawResponse | undefined;
    const full: string[] = [];
    for (let k = 0; k < 60; k++) {
      last = await send(gw, segmentRequest(id, k * 10, k * 10, total, 'x'));
      full.push(`${k * 10}-${k * 10}/${total}`);
    }
    expect(last!.status).toBe(201);
    const truncated = last!.body.toString();
    expect(truncated.length).toBeLessThan(full.join(',').length);
    expect(full.join(',').startsWith(truncated)).toBe(true);
    const status = await query(gw, id);
    expect(status.headers.range).toBe(full.join(','));
    expect(status.body.toString()).toBe(full.join(','));
  });

  test('a completed session is reported complete during the retention time', async () => {
    const id = sid('d22c');
    expect((await send(gw, segmentRequest(id, 0, 1, 2, 'ok'))).status).toBe(200);
    const status = await query(gw, id);
    expect(status.status).toBe(200);
    expect(status.headers.range).toBe('0-1/2');
    expect(status.headers['x-upload-total']).toBe('2');
  });
});

describe('D23: acknowledged means durable: state and data are on disk when the 201 arrives', () => {
  test('the state file exists at the moment of the 201', async () => {
    const id = sid('d23');
    const res = await send(gw, segmentRequest(id, 0, 4, 10, 'hello'));
    expect(res.status).toBe(201);
    // Checked synchronously, right after the answer.
    const files = stateFiles(gw, id);
    expect(files).toHaveLength(1);
    const text = readFileSync(path.join(gw.state, files[0]), 'latin1');
    expect(text).toContain(id);
    expect(readFileSync(dataPath(gw, id)).toString()).toBe('hello');
    const res2 = await send(gw, segmentRequest(id, 7, 9, 10, 'rld'));
    expect(res2.status).toBe(201);
    const after = readFileSync(path.join(gw.state, stateFiles(gw, id)[0]), 'latin1');
    expect(after).not.toBe(text);
  });
});
