/**
 * One owner per data file (issue 9 item 2, D31, D32), and a failed first segment leaves nothing
 * (item 6, D33), against a real gateway process:
 * - a single-shot upload (no range) carrying a Session-ID is a session like any segment: it never
 *   deletes or truncates a resumable session's file, and a completed one is kept and replayed (a
 *   shorter second single-shot with the same id gets 409, the backend is called once);
 * - a Session-ID equal to a 10-digit temporary name never writes into or deletes that file (a
 *   multipart file in flight, or one already handed to the backend), and the temporary counter
 *   never picks a name a session holds;
 * - a first segment that fails (short body then a half-close, a disconnect, a malformed chunk)
 *   leaves no data file and no session.
 * Each attack ends with the state checks: acknowledged bytes byte-identical, no stray files, no
 * leaked descriptors, the gateway still serving.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { httpRequest, listFiles } from '../helpers/gateway';
import { randomFile, send, sendSegment, sleep, statusQuery, type ByteRange } from '../helpers/segments';
import {
  acknowledge, exchange, expectAcknowledgedIntact, expectNoErrorLogged, expectNothingLeaked, expectStillServing,
  RawConnection, segmentHead, snapshot, startAttackedGateway, type AttackedGateway,
} from './helpers';

let gw: AttackedGateway;
let ids = 0;
const freshId = (tag: string) => `own${process.pid}${tag}${++ids}`;

beforeAll(async () => {
  gw = await startAttackedGateway();
});
afterAll(async () => {
  await gw?.stop();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const field = (fields: Array<[string, string]>, name: string) => fields.find(([n]) => n === name)?.[1];

/** A single-shot upload (no range) with a Session-ID. */
function singleShot(id: string, body: Buffer, extra: Array<[string, string]> = []): Buffer {
  return Buffer.concat([
    httpRequest('POST', '/upload', [
      ['Content-Type', 'application/octet-stream'],
      ['Content-Disposition', 'attachment; filename="single.bin"'],
      ['Session-ID', id],
      ['Content-Length', String(body.length)],
      ...extra,
    ], ''),
    body,
  ]);
}

describe('a single-shot upload with a Session-ID is a session (D31)', () => {
  test('aborted over a resumable session of that id: the session\'s acknowledged bytes stay, and the upload completes byte-identical', async () => {
    const upload = await acknowledge(gw);
    const before = await snapshot(gw);
    // The whole file in one request, cut off after 10 KiB.
    const connection = await RawConnection.open(gw.port);
    connection.write(singleShot(upload.id, upload.file).subarray(0, 400 + 10 * 1024));
    await sleep(200);
    connection.destroy();
    await sleep(300);
    await expectAcknowledgedIntact(gw, upload);
    await expectNothingLeaked(gw, before);
    // The missing bytes complete it: the backend gets the exact file (no zeros where acknowledged bytes were).
    const calls = gw.backend.requests.length;
    expect((await sendSegment(gw.port, upload.id, upload.file, { start: 32 * 1024, end: 64 * 1024 - 1 })).status).toBe(200);
    expect(field(gw.backend.requests[calls]!.fields, 'sha256')).toBe(sha256(upload.file));
    expect(readFileSync(gw.dataPath(upload.id)).equals(upload.file)).toBe(true);
    await expectStillServing(gw);
  });

  test('a complete single-shot completes the session it joins; another total is 409 and writes nothing', async () => {
    const upload = await acknowledge(gw);
    const shorter = await exchange(gw.port, singleShot(upload.id, upload.file.subarray(0, 1000)));
    expect(shorter.answers.map((a) => a.status)).toEqual([409]);
    await expectAcknowledgedIntact(gw, upload);
    const calls = gw.backend.requests.length;
    const whole = await exchange(gw.port, singleShot(upload.id, upload.file));
    expect(whole.answers.map((a) => a.status)).toEqual([200]);
    expect(gw.backend.requests.length).toBe(calls + 1);
    expect(field(gw.backend.requests[calls]!.fields, 'sha256')).toBe(sha256(upload.file));
  });

  test('two single-shots with one id: the second (shorter) gets 409 while the first completion is retained; the backend is called once', async () => {
    const id = freshId('twice');
    const first = randomFile(20_000, 71);
    const calls = gw.backend.requests.length;
    const a = await exchange(gw.port, singleShot(id, first));
    expect(a.answers.map((x) => x.status)).toEqual([200]);
    const b = await exchange(gw.port, singleShot(id, first.subarray(0, 5000)));
    expect(b.answers.map((x) => x.status)).toEqual([409]);
    expect(b.answers[0]!.body.toString()).toMatch(/already completed an upload of 20000 bytes/);
    // The same bytes again: the stored answer is replayed (D7), no second hand-off.
    const c = await exchange(gw.port, singleShot(id, first));
    expect(c.answers.map((x) => x.status)).toEqual([200]);
    expect(gw.backend.requests.length).toBe(calls + 1);
    expect(readFileSync(gw.dataPath(id)).equals(first)).toBe(true);
    // And a segment of another total: 409 as well (D3, D9).
    expect((await sendSegment(gw.port, id, randomFile(100, 1), { start: 0, end: 99 })).status).toBe(409);
  });

  test('a chunked single-shot (length unknown) holds the session while it streams; a segment then waits (503)', async () => {
    const id = freshId('chunked');
    const connection = await RawConnection.open(gw.port);
    connection.write(
      'POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="c.bin"\r\n' +
        `Session-ID: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
    );
    await sleep(200);
    const meanwhile = await sendSegment(gw.port, id, Buffer.from('xy'), { start: 0, end: 1 });
    expect(meanwhile.status).toBe(503);
    expect(meanwhile.headers['retry-after']).toBe('1');
    connection.write('6\r\n world\r\n0\r\n\r\n');
    const answers = await connection.waitAnswers(1, 5000);
    expect(answers.answers.map((x) => x.status)).toEqual([200]);
    connection.destroy();
    expect(readFileSync(gw.dataPath(id), 'utf8')).toBe('hello world');
    expect(field(gw.backend.requests.at(-1)!.fields, 'size')).toBe('11');
  });
});

describe('Session-IDs and 10-digit temporary names never share a file (D32)', () => {
  test('a Session-ID equal to the name of a multipart file in flight: 409, that file is untouched; the multipart upload completes', async () => {
    const boundary = 'XyZ0123';
    const head = (size: number) =>
      `POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${size}\r\n\r\n`;
    const partHead = `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="m.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    const data = randomFile(30_000, 5);
    const tail = `\r\n--${boundary}--\r\n`;
    const body = Buffer.concat([Buffer.from(partHead), data, Buffer.from(tail)]);
    const connection = await RawConnection.open(gw.port);
    connection.write(head(body.length));
    connection.write(body.subarray(0, partHead.length + 10_000));
    // Find its 10-digit file in the store.
    let temp: string | undefined;
    for (let k = 0; k < 50 && !temp; k++) {
      await sleep(20);
      temp = listFiles(gw.store).find((f) => /\/\d{10}$/.test(f));
    }
    expect(temp).toBeDefined();
    const name = path.basename(temp!);
    const attack = await sendSegment(gw.port, name, Buffer.from('overwritten!'), { start: 0, end: 11 });
    expect(attack.status).toBe(409);
    expect(attack.body.toString()).toMatch(/another upload's file/);
    expect((await statusQuery(gw.port, name)).status).toBe(404);
    // A single-shot with that id is refused the same way.
    expect((await exchange(gw.port, singleShot(name, Buffer.from('gone?')))).answers.map((a) => a.status)).toEqual([409]);
    connection.write(body.subarray(partHead.length + 10_000));
    const done = await connection.waitAnswers(1, 5000);
    expect(done.answers.map((a) => a.status)).toEqual([200]);
    connection.destroy();
    const handed = gw.backend.requests.at(-1)!;
    expect(field(handed.fields, 'f.path') ?? field(handed.fields, 'path')).toBe(path.join(gw.store, temp!));
    expect(readFileSync(path.join(gw.store, temp!)).equals(data)).toBe(true);
  });

  test('a stored file left for the backend under a 10-digit name is never a session\'s, and the counter never takes a session\'s name', async () => {
    // The backend kept a multipart file (it does not move files): its name is taken for good.
    const stored = path.join(gw.store, '7', '0000000007');
    mkdirSync(path.dirname(stored), { recursive: true });
    writeFileSync(stored, 'the backend has not processed me yet');
    const before = await snapshot(gw);
    expect((await sendSegment(gw.port, '0000000007', Buffer.from('abc'), { start: 0, end: 2 })).status).toBe(409);
    expect(readFileSync(stored, 'utf8')).toBe('the backend has not processed me yet');
    await expectNothingLeaked(gw, before);
    // Sessions named like the next temporary names: unranged uploads without a Session-ID skip them.
    const sessionNames = Array.from({ length: 6 }, (_, k) => String(20 + k).padStart(10, '0'));
    for (const name of sessionNames) expect((await sendSegment(gw.port, name, Buffer.from('0123456789'), { start: 0, end: 4 })).status).toBe(201);
    for (let k = 0; k < 30; k++) {
      const res = await send(gw.port, httpRequest('POST', '/upload', [
        ['Content-Type', 'text/plain'], ['Content-Disposition', 'attachment; filename="t.txt"'], ['Content-Length', '4'],
      ]), Buffer.from('temp'));
      expect(res.status).toBe(200);
    }
    for (const name of sessionNames) expect(readFileSync(gw.dataPath(name)).subarray(0, 5).toString()).toBe('01234');
    await expectStillServing(gw);
    expectNoErrorLogged(gw);
  });
});

describe('a failed first segment leaves nothing (D33)', () => {
  async function expectNothingOf(id: string): Promise<void> {
    await sleep(300);
    expect(existsSync(gw.dataPath(id))).toBe(false);
    expect(listFiles(gw.state).filter((f) => f.includes(id))).toEqual([]);
    expect((await statusQuery(gw.port, id)).status).toBe(404);
  }

  test('a short body, then a half-close → 400; no data file, no session', async () => {
    const id = freshId('half');
    const before = await snapshot(gw);
    const halfClosed = await RawConnection.open(gw.port, { allowHalfOpen: true });
    await halfClosed.write(`${segmentHead(id, 'bytes 0-9999/20000', ['Content-Length: 10000'])}\r\n\r\n${'x'.repeat(3000)}`);
    halfClosed.socket.end();
    const answered = await halfClosed.waitAnswers(1, 3000);
    expect(answered.answers.map((a) => a.status)).toEqual([400]);
    await expectNothingOf(id);
    await expectNothingLeaked(gw, before);
  });

  test('a disconnect mid-body, and a malformed chunk: no data file, no session', async () => {
    const id = freshId('cut');
    const before = await snapshot(gw);
    const connection = await RawConnection.open(gw.port);
    connection.write(`${segmentHead(id, 'bytes 0-9999/20000', ['Content-Length: 10000'])}\r\n\r\n${'y'.repeat(4000)}`);
    await sleep(200);
    connection.destroy();
    await expectNothingOf(id);
    const chunked = freshId('chunk');
    const bad = await exchange(gw.port, `${segmentHead(chunked, 'bytes 0-9/10', ['Transfer-Encoding: chunked'])}\r\n\r\n5\r\nhelloXX\r\n`, 1000);
    expect(bad.answers.map((a) => a.status)).toEqual([400]);
    await expectNothingOf(chunked);
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
  });

  test('a failed segment of a session that has acknowledged bytes removes nothing of it (D8)', async () => {
    const upload = await acknowledge(gw);
    const missing: ByteRange = { start: 32 * 1024, end: 64 * 1024 - 1 };
    const connection = await RawConnection.open(gw.port);
    connection.write(`${segmentHead(upload.id, `bytes ${missing.start}-${missing.end}/${upload.file.length}`, [`Content-Length: ${missing.end - missing.start + 1}`])}\r\n\r\n`);
    connection.write(upload.file.subarray(missing.start, missing.start + 5000));
    await sleep(200);
    connection.destroy();
    await sleep(200);
    await expectAcknowledgedIntact(gw, upload);
  });
});
