/**
 * Header bytes on their way to the backend, against a real gateway process (issue 9 item 4):
 * control characters in a file name are refused (400, D26) before anything is written — a
 * `%0D%0A` in `filename*` would otherwise forge fields in the backend's form; non-ASCII bytes reach
 * the backend byte for byte (compared at a raw TCP backend); a hand-off that fails in any way
 * releases its claim, so the clean retry hands off at once instead of waiting on a 503.
 */
import { expectPlainError, httpRequest } from '../helpers/gateway';
import { randomFile, sendSegment } from '../helpers/segments';
import {
  acknowledge, exchange, expectAcknowledgedIntact, expectNoErrorLogged, expectNothingLeaked, expectStillServing,
  RawCaptureBackend, segmentHead, snapshot, startAttackedGateway, type AttackedGateway,
} from './helpers';

let gw: AttackedGateway;
let flaky: RawCaptureBackend;
let flakyAnswers = 0;

beforeAll(async () => {
  // Its first answer breaks off after the head; later ones are complete.
  flaky = await new RawCaptureBackend(() =>
    ++flakyAnswers === 1
      ? 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly a part'
      : 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\ncomplete\n',
  ).start();
  gw = await startAttackedGateway({
    topLevel: [
      `location /flaky { upload_pass http://127.0.0.1:${flaky.port}; upload_resumable on; upload_store __STORE__ 1; upload_state_store __STATE__; }`,
      'location /tight { upload_pass http://__BACKEND__; upload_resumable on; upload_store __STORE__ 1; upload_state_store __STATE__;',
      '  upload_set_form_field name "$upload_file_name"; upload_max_output_body_len 100; }',
    ].join('\n'),
  });
});
afterAll(async () => {
  await gw?.stop();
  await flaky?.stop();
});

const latin1 = (s: string) => Buffer.from(s, 'latin1');
const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** The completing segment of `upload` with its Content-Disposition (as bytes) and extra header lines. */
function completingSegment(upload: { id: string; file: Buffer; ranges: Array<{ start: number; end: number }> }, disposition: Buffer, extra: Buffer[] = []): Buffer {
  const start = upload.ranges[0].end + 1;
  const end = upload.ranges[1].start - 1;
  const head = segmentHead(upload.id, `bytes ${start}-${end}/${upload.file.length}`).replace(/Content-Disposition: [^\r]*\r\n/, '');
  return Buffer.concat([
    latin1(`${head}\r\nContent-Length: ${end - start + 1}\r\nContent-Disposition: `), disposition,
    ...extra.flatMap((line) => [latin1('\r\n'), line]),
    latin1('\r\nConnection: close\r\n\r\n'),
    upload.file.subarray(start, end + 1),
  ]);
}

describe('control characters in a file name: 400 before anything is written (D26)', () => {
  test.each([
    ['a NUL decoded from filename*', "attachment; filename*=UTF-8''a%00b.txt"],
    ['CR LF decoded from filename* (forging a field of the backend form)', "attachment; filename*=UTF-8''x%0D%0A--00000000000000000001%0D%0AContent-Disposition: form-data; name=%22path%22%0D%0A%0D%0A/etc/passwd"],
    ['an escape decoded from filename*', "attachment; filename*=UTF-8''%1B[31mred"],
    ['a DEL decoded from filename*', "attachment; filename*=iso-8859-1''a%7Fb"],
  ])('%s, on the segment that completes the upload: 400, no hand-off, and the clean retry completes at once', async (_label, disposition) => {
    const upload = await acknowledge(gw);
    const before = await snapshot(gw);
    const calls = gw.backend.requests.length;
    const res = await exchange(gw.port, completingSegment(upload, latin1(disposition)));
    expect(res.answers.map((a) => a.status)).toEqual([400]);
    expectPlainError(res.answers[0], 400);
    expect(res.answers[0].body.toString('latin1')).toMatch(/^control character in the filename\* of Content-Disposition /);
    expect(gw.backend.requests.length).toBe(calls);
    await expectNothingLeaked(gw, before);
    await expectAcknowledgedIntact(gw, upload);
    const retry = await exchange(gw.port, completingSegment(upload, latin1('attachment; filename="clean.txt"')));
    expect(retry.answers.map((a) => a.status)).toEqual([200]);
    expect(gw.backend.requests.length).toBe(calls + 1);
    expectNoErrorLogged(gw);
  });

  test('a control character in a multipart part filename: 400, the files of the request removed', async () => {
    const before = await snapshot(gw);
    const boundary = 'b0undary';
    const body = Buffer.concat([
      latin1(`--${boundary}\r\nContent-Disposition: form-data; name="first"; filename="ok.bin"\r\n\r\n`), randomFile(20_000, 3),
      latin1(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="second"; filename="bad\x01.bin"\r\n\r\n`), randomFile(100, 4),
      latin1(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await exchange(gw.port, httpRequest('POST', '/upload', [['Content-Type', `multipart/form-data; boundary=${boundary}`]], body));
    expect(res.answers.map((a) => a.status)).toEqual([400]);
    expect(res.answers[0].body.toString('latin1')).toMatch(/control character in Content-Disposition/);
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
  });

  test('a control character in the file name of an unranged upload: 400, no temporary file', async () => {
    const before = await snapshot(gw);
    const res = await exchange(gw.port, httpRequest('POST', '/upload', [['Content-Type', 'text/plain'], ['Content-Disposition', "attachment; filename*=UTF-8''a%09%0Ab"]], 'hello'));
    expect(res.answers.map((a) => a.status)).toEqual([400]);
    await expectNothingLeaked(gw, before);
    await expectStillServing(gw);
  });

  test('a control character in a header the hand-off would forward: 400 from the parser, and the clean retry completes at once', async () => {
    const upload = await acknowledge(gw);
    const before = await snapshot(gw);
    const res = await exchange(gw.port, completingSegment(upload, latin1('attachment; filename="a.txt"'), [latin1('X-Note: a\x01b')]));
    expect(res.answers.map((a) => a.status)).toEqual([400]);
    await expectNothingLeaked(gw, before);
    const retry = await exchange(gw.port, completingSegment(upload, latin1('attachment; filename="a.txt"'), [latin1('X-Note: ab')]));
    expect(retry.answers.map((a) => a.status)).toEqual([200]);
  });
});

describe('non-ASCII header bytes reach the backend byte for byte', () => {
  test('a UTF-8 file name, Latin-1 and other high bytes in forwarded headers', async () => {
    const upload = await acknowledge(gw);
    const calls = gw.backend.requests.length;
    const disposition = Buffer.concat([latin1('attachment; filename="'), utf8('naïve €.txt'), latin1('"')]);
    const extra = [latin1('X-Name: caf\xe9'), Buffer.concat([latin1('X-Bytes: '), Buffer.from([0x80, 0xa0, 0xfe, 0xff])])];
    const res = await exchange(gw.port, completingSegment(upload, disposition, extra));
    expect(res.answers.map((a) => a.status)).toEqual([200]);
    const received = gw.backend.requests[calls];
    for (const line of [Buffer.concat([latin1('Content-Disposition: '), disposition]), ...extra]) {
      expect(received.raw.subarray(0, received.head.length + 2).includes(Buffer.concat([latin1('\r\n'), line, latin1('\r\n')]))).toBe(true);
    }
    // The generated form carries the name as the client's bytes too ($upload_file_name).
    expect(latin1(received.fields.find(([name]) => name === 'name')![1]).equals(utf8('naïve €.txt'))).toBe(true);
  });

  test('a filename* decoded from UTF-8 percent-encoding is passed as its UTF-8 bytes', async () => {
    const upload = await acknowledge(gw);
    const calls = gw.backend.requests.length;
    const res = await exchange(gw.port, completingSegment(upload, latin1("attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt")));
    expect(res.answers.map((a) => a.status)).toEqual([200]);
    expect(latin1(gw.backend.requests[calls].fields.find(([name]) => name === 'name')![1]).equals(utf8('日本.txt'))).toBe(true);
  });
});

describe('a hand-off that fails releases its claim', () => {
  test('a backend answer that breaks off: 502, and the retry of the segment hands off again at once (not 503)', async () => {
    const id = `flaky${process.pid}`;
    const file = randomFile(2000, 11);
    const head = (start: number, end: number) => segmentHead(id, `bytes ${start}-${end}/${file.length}`).replace('POST /upload', 'POST /flaky');
    const send = (start: number, end: number) =>
      exchange(gw.port, Buffer.concat([latin1(`${head(start, end)}\r\nContent-Length: ${end - start + 1}\r\nConnection: close\r\n\r\n`), file.subarray(start, end + 1)]));
    expect((await send(0, 999)).answers.map((a) => a.status)).toEqual([201]);
    const broken = await send(1000, 1999);
    expect(broken.answers.map((a) => a.status)).toEqual([502]);
    const retry = await send(1000, 1999);
    expect(retry.answers.map((a) => a.status)).toEqual([200]);
    expect(retry.answers[0].body.toString()).toBe('complete\n');
    expect(flaky.requests.length).toBe(2);
    // The completed upload is replayed from now on, without a third hand-off (D7).
    expect((await sendSegment(gw.port, id, file, { start: 0, end: 999 })).status).toBe(200);
    expect(flaky.requests.length).toBe(2);
  });

  test('a form over upload_max_output_body_len: 413, and the retry gets 413 again at once (not 503)', async () => {
    const id = `tight${process.pid}`;
    const file = randomFile(20, 12);
    const segment = (start: number, end: number) => {
      const head = segmentHead(id, `bytes ${start}-${end}/${file.length}`).replace('POST /upload', 'POST /tight').replace('filename="a.bin"', `filename="${'n'.repeat(120)}.bin"`);
      return exchange(gw.port, Buffer.concat([latin1(`${head}\r\nContent-Length: ${end - start + 1}\r\nConnection: close\r\n\r\n`), file.subarray(start, end + 1)]));
    };
    const calls = gw.backend.requests.length;
    expect((await segment(0, 9)).answers.map((a) => a.status)).toEqual([201]);
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await segment(10, 19);
      expect(res.answers.map((a) => a.status)).toEqual([413]);
      expect(res.answers[0].body.toString()).toMatch(/upload_max_output_body_len/);
    }
    expect(gw.backend.requests.length).toBe(calls);
  });
});
