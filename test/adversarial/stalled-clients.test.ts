/**
 * Stalled clients against a real gateway process (issue 9 item 5, D25): nginx's
 * `client_header_timeout`, `client_body_timeout` and `send_timeout`, here 1 s each. A segment
 * whose body stops arriving is ended with 408 and its byte range released, so the retry goes
 * through at once; a head that never completes gets 408; a client that stops reading its answer
 * is disconnected. Time the gateway itself holds a body back (`upload_limit_rate`) is not a stall.
 */
import { createHash } from 'node:crypto';
import { listFiles, expectPlainError, segmentRequest } from '../helpers/gateway';
import { randomFile, sendSegment, sleep } from '../helpers/segments';
import {
  acknowledge, exchange, expectAcknowledgedIntact, expectNoErrorLogged, expectNothingLeaked, expectStillServing, leakableDescriptors, settleDescriptors,
  RawCaptureBackend, RawConnection, segmentHead, snapshot, startAttackedGateway, type AttackedGateway,
} from './helpers';

const TIMEOUT_MS = 1000;
/** A big answer: more than the loopback socket buffers hold, so a client that does not read stalls it. */
const BIG_ANSWER = 64 * 1024 * 1024;

let gw: AttackedGateway;
let big: RawCaptureBackend;

beforeAll(async () => {
  const answer = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BIG_ANSWER}\r\nConnection: close\r\n\r\n`, 'latin1'),
    Buffer.alloc(BIG_ANSWER, 0x61),
  ]);
  big = await new RawCaptureBackend(() => answer).start();
  gw = await startAttackedGateway({
    topLevel: [
      'client_header_timeout 1s;',
      'client_body_timeout 1s;',
      'send_timeout 1s;',
      'location /slow { upload_pass http://__BACKEND__; upload_resumable on; upload_store __STORE__ 1; upload_state_store __STATE__; upload_limit_rate 512k; client_body_timeout 300ms; }',
      `location /big { upload_pass http://127.0.0.1:${big.port}; upload_resumable on; upload_store __STORE__ 1; upload_state_store __STATE__; }`,
    ].join('\n'),
  });
});
afterAll(async () => {
  await gw?.stop();
  await big?.stop();
});

let sessions = 0;
const freshId = (tag: string) => `${tag}${process.pid}n${++sessions}`;

/** Sends a head and the first `sent` bytes of a body announced as `length` bytes, then goes silent; returns when the server closed. */
async function stallBody(head: string, body: Buffer, sent: number): Promise<{ status: number[]; elapsedMs: number; connection: RawConnection }> {
  const connection = await RawConnection.open(gw.port);
  await connection.write(Buffer.concat([Buffer.from(`${head}\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body.subarray(0, sent)]));
  const started = Date.now();
  const res = await connection.waitClosed(10 * TIMEOUT_MS);
  const elapsedMs = Date.now() - started;
  expect(res.closed).toBe(true);
  for (const answer of res.answers) expectPlainError(answer, answer.status);
  return { status: res.answers.map((a) => a.status), elapsedMs, connection };
}

describe('client_body_timeout', () => {
  test('a segment whose body stops arriving → 408 after the timeout, its range released: the retry completes the upload at once', async () => {
    const upload = await acknowledge(gw);
    const before = await snapshot(gw);
    const missing = { start: upload.ranges[0].end + 1, end: upload.ranges[1].start - 1 };
    const head = segmentHead(upload.id, `bytes ${missing.start}-${missing.end}/${upload.file.length}`);
    const stalled = await stallBody(head, upload.file.subarray(missing.start, missing.end + 1), 1000);
    expect(stalled.status).toEqual([408]);
    expect(stalled.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(stalled.elapsedMs).toBeLessThan(5 * TIMEOUT_MS);
    await expectAcknowledgedIntact(gw, upload);
    // Not 503 (range still reserved): the same segment goes through right away and completes the file.
    const calls = gw.backend.requests.length;
    expect((await sendSegment(gw.port, upload.id, upload.file, missing)).status).toBe(200);
    const sha256 = gw.backend.requests[calls].fields.find(([name]) => name === 'sha256')?.[1];
    expect(sha256).toBe(createHash('sha256').update(upload.file).digest('hex'));
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
    expectNoErrorLogged(gw);
  });

  test('a first segment that stalls → 408, and the same segment is acknowledged right after', async () => {
    const id = freshId('first');
    const file = randomFile(64 * 1024, sessions);
    const range = { start: 0, end: 32 * 1024 - 1 };
    const before = await snapshot(gw);
    const stalled = await stallBody(segmentHead(id, `bytes 0-${range.end}/${file.length}`), file.subarray(0, range.end + 1), 10);
    expect(stalled.status).toEqual([408]);
    expect((await sendSegment(gw.port, id, file, range)).status).toBe(201);
    await expectAcknowledgedIntact(gw, { id, file, ranges: [range] });
    await expectNothingLeaked(gw, { ...before, store: [...before.store, `${id.slice(-1)}/${id}`].sort(), state: listFiles(gw.state) });
    await expectStillServing(gw);
  });

  test('an unranged upload that stalls → 408, its temporary file removed', async () => {
    const before = await snapshot(gw);
    const head = 'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="u.bin"';
    const stalled = await stallBody(head, randomFile(50_000, 7), 20_000);
    expect(stalled.status).toEqual([408]);
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
  });

  test('a multipart form that stalls inside a file part → 408, no file of it stays', async () => {
    const before = await snapshot(gw);
    const boundary = 'XyZ';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="m.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`, 'latin1'),
      randomFile(40_000, 8),
      Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
    ]);
    const stalled = await stallBody(`POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=${boundary}`, body, 20_000);
    expect(stalled.status).toEqual([408]);
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
  });

  test('a slow but steady client is not timed out', async () => {
    const id = freshId('steady');
    const file = randomFile(10, sessions);
    const connection = await RawConnection.open(gw.port);
    await connection.write(`${segmentHead(id, `bytes 0-9/${file.length}`)}\r\nContent-Length: 10\r\n\r\n`);
    for (let i = 0; i < 10; i++) {
      await sleep(TIMEOUT_MS / 3);
      await connection.write(file.subarray(i, i + 1));
    }
    const res = await connection.waitAnswers(1, 5 * TIMEOUT_MS);
    connection.destroy();
    expect(res.answers.map((a) => a.status)).toEqual([200]);
  });

  test('a body the gateway itself holds back (upload_limit_rate 512k) is not a stall (client_body_timeout 300ms there)', async () => {
    const id = freshId('rate');
    const file = randomFile(2 * 1024 * 1024, sessions);
    const started = Date.now();
    const res = await exchange(gw.port, segmentRequest(id, 0, file.length - 2, file.length, file.subarray(0, file.length - 1), [], '/slow'), 20_000);
    // Read at 512 KiB/s: about 3 s, in steps of a second; between them the gateway, its buffers
    // full, reads nothing for far longer than client_body_timeout.
    expect(Date.now() - started).toBeGreaterThan(2000);
    expect(res.answers.map((a) => a.status)).toEqual([201]);
  }, 30_000);
});

describe('client_header_timeout', () => {
  test('a request head that never completes → 408, then the connection closes', async () => {
    const before = await snapshot(gw);
    const connection = await RawConnection.open(gw.port);
    await connection.write('POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: applica');
    const started = Date.now();
    const res = await connection.waitClosed(10 * TIMEOUT_MS);
    expect(res.closed).toBe(true);
    expect(res.answers.map((a) => a.status)).toEqual([408]);
    expectPlainError(res.answers[0], 408);
    expect(res.answers[0].statusText).toBe('Request Time-out');
    expect(Date.now() - started).toBeLessThan(5 * TIMEOUT_MS);
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
  });

  test('a client that keeps its side open after the 408 is cut off 5 s later: no descriptor kept', async () => {
    const before = await snapshot(gw);
    const connection = await RawConnection.open(gw.port, { allowHalfOpen: true });
    await connection.write('POST /upload HTTP/1.1\r\nHost: test\r\n');
    const answered = await connection.waitAnswers(1, 10 * TIMEOUT_MS);
    expect(answered.answers.map((a) => a.status)).toEqual([408]);
    expect(connection.closed).toBe(false);
    await sleep(5500);
    // The gateway let go of the connection (its descriptor is gone) although the client did not close.
    await expectNothingLeaked(gw, before);
    connection.destroy();
  }, 30_000);

  test('a connection that sends nothing → 408, then the connection closes', async () => {
    const connection = await RawConnection.open(gw.port);
    const res = await connection.waitClosed(10 * TIMEOUT_MS);
    expect(res.closed).toBe(true);
    expect(res.answers.map((a) => a.status)).toEqual([408]);
  });
});

describe('send_timeout', () => {
  test('a client that does not read its answer is disconnected; the gateway lets go of everything', async () => {
    const before = await snapshot(gw);
    const baseline = leakableDescriptors(gw);
    const id = freshId('noread');
    const file = randomFile(1000, sessions);
    const connection = await RawConnection.open(gw.port);
    connection.pauseReading();
    await connection.write(Buffer.concat([
      Buffer.from(`${segmentHead(id, `bytes 0-999/1000`).replace('POST /upload', 'POST /big')}\r\nContent-Length: 1000\r\n\r\n`, 'latin1'),
      file,
    ]));
    // The gateway relays the backend's 64 MiB answer until the buffers are full, then waits; after
    // send_timeout without progress it closes the connection (and the backend's).
    await sleep(TIMEOUT_MS);
    expect(await settleDescriptors(gw, baseline, 9 * TIMEOUT_MS)).toBeLessThanOrEqual(baseline);
    connection.resumeReading();
    const res = await connection.waitClosed(10 * TIMEOUT_MS);
    expect(res.closed).toBe(true);
    expect(res.raw.length).toBeLessThan(BIG_ANSWER);
    expect(big.requests.length).toBe(1);
    await expectNothingLeaked(gw, { ...before, store: [...before.store, `${id.slice(-1)}/${id}`].sort(), state: listFiles(gw.state) });
    await expectStillServing(gw);
    expectNoErrorLogged(gw);
  }, 30_000);
});
