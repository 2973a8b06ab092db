/**
 * Request smuggling against a real gateway process (issue 9 item 1, D24; RFC 9112 §6.1, §6.3,
 * §7.1, §9.6). Every ambiguous or malformed framing gets a definite answer and the connection
 * closes; the request hidden behind it — a segment of a session nobody else uses — is never run:
 * no answer for it, no file, no session record. After each attack: acknowledged bytes intact,
 * nothing leaked, nothing logged at error level, the gateway still serving.
 */
import { expectPlainError } from '../helpers/gateway';
import {
  acknowledge, exchange, expectAcknowledgedIntact, expectNoErrorLogged, expectNothingLeaked, expectStillServing,
  segmentHead, smuggledSegment, snapshot, startAttackedGateway, type Acknowledged, type AttackedGateway,
} from './helpers';

let gw: AttackedGateway;
let victim: Acknowledged;
let attacks = 0;

beforeAll(async () => {
  gw = await startAttackedGateway();
  victim = await acknowledge(gw);
});
afterAll(async () => {
  await gw?.stop();
});

/** A segment head for a fresh session (were it ever accepted, its file would appear). */
function attackHead(...extra: string[]): string {
  attacks += 1;
  return segmentHead(`atk${process.pid}n${attacks}`, 'bytes 0-4/10', extra);
}

/**
 * A segment head for bytes of the victim's session that are not acknowledged: for attacks found
 * only in the body, after the gateway started the segment (a failed segment of a session that
 * exists leaves no file behind).
 */
function bodyAttackHead(...extra: string[]): string {
  attacks += 1;
  const start = victim.ranges[0].end + 1;
  return segmentHead(victim.id, `bytes ${start}-${start + 4}/${victim.file.length}`, extra);
}

/** Sends the attack with a smuggled segment behind it and checks the answers and the state after. */
async function attack(bytes: string, statuses: number[], options: { closes?: boolean; smuggled?: boolean } = {}): Promise<void> {
  const before = await snapshot(gw);
  const res = await exchange(gw.port, options.smuggled === false ? bytes : bytes + smuggledSegment(String(attacks)));
  expect(res.answers.map((a) => a.status)).toEqual(statuses);
  for (const answer of res.answers) if (answer.status >= 400) expectPlainError(answer, answer.status);
  expect(res.closed).toBe(options.closes ?? true);
  await expectNothingLeaked(gw, before);
  await expectAcknowledgedIntact(gw, victim);
  await expectStillServing(gw);
  expectNoErrorLogged(gw);
}

const chunked = '5\r\nhello\r\n0\r\n\r\n';

describe('ambiguous framing: 400, the connection closed, nothing behind it runs', () => {
  test.each<[string, () => string]>([
    ['Content-Length, then Transfer-Encoding: chunked', () => `${attackHead('Content-Length: 5', 'Transfer-Encoding: chunked')}\r\n\r\n${chunked}`],
    ['Transfer-Encoding: chunked, then Content-Length', () => `${attackHead('Transfer-Encoding: chunked', 'Content-Length: 5')}\r\n\r\n${chunked}`],
    ['Transfer-Encoding twice', () => `${attackHead('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked')}\r\n\r\n${chunked}`],
    ['Transfer-Encoding: identity, then chunked', () => `${attackHead('Transfer-Encoding: identity', 'Transfer-Encoding: chunked')}\r\n\r\n${chunked}`],
    ['an obs-folded Transfer-Encoding', () => `${attackHead('Transfer-Encoding:', ' chunked')}\r\n\r\n${chunked}`],
    ['Transfer-Encoding hidden in an obs-fold, with Content-Length', () => `${attackHead('X-Note: a', ' Transfer-Encoding: chunked', 'Content-Length: 5')}\r\n\r\nhello`],
    ['a space before the colon of Transfer-Encoding', () => `${attackHead('Transfer-Encoding : chunked')}\r\n\r\n${chunked}`],
    ['a chunk size with trailing whitespace', () => `${bodyAttackHead('Transfer-Encoding: chunked')}\r\n\r\n5 \r\nhello\r\n0\r\n\r\n`],
    ['whitespace between a chunk size and its extension', () => `${bodyAttackHead('Transfer-Encoding: chunked')}\r\n\r\n5 ;x=y\r\nhello\r\n0\r\n\r\n`],
    ['chunk data not followed by CRLF', () => `${bodyAttackHead('Transfer-Encoding: chunked')}\r\n\r\n5\r\nhelloXY0\r\n\r\n`],
    ['chunk data followed by a bare LF', () => `${bodyAttackHead('Transfer-Encoding: chunked')}\r\n\r\n5\r\nhello\n0\r\n\r\n`],
    ['a chunk size line ended by a bare LF', () => `${bodyAttackHead('Transfer-Encoding: chunked')}\r\n\r\n5\nhello\r\n0\r\n\r\n`],
    ['a chunk size too large for 64 bits', () => `${bodyAttackHead('Transfer-Encoding: chunked')}\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n`],
    ['a head line ended by a bare CR', () => `${attackHead('X-Note: a\rContent-Length: 5')}\r\n\r\nhello`],
    ['Transfer-Encoding: chunked, gzip (chunked not last)', () => `${attackHead('Transfer-Encoding: chunked, gzip')}\r\n\r\n${chunked}`],
    ['Transfer-Encoding: gzip', () => `${attackHead('Transfer-Encoding: gzip')}\r\n\r\n${chunked}`],
    ['Transfer-Encoding: xchunked', () => `${attackHead('Transfer-Encoding: xchunked')}\r\n\r\n${chunked}`],
    ['Content-Length: +5', () => `${attackHead('Content-Length: +5')}\r\n\r\nhello`],
    ['Content-Length: 5,5', () => `${attackHead('Content-Length: 5,5')}\r\n\r\nhello`],
    ['Content-Length: 0x5', () => `${attackHead('Content-Length: 0x5')}\r\n\r\nhello`],
    ['Content-Length: 5 5', () => `${attackHead('Content-Length: 5 5')}\r\n\r\nhello`],
    ['Content-Length twice with the same value', () => `${attackHead('Content-Length: 5', 'Content-Length: 5')}\r\n\r\nhello`],
    ['Content-Length beyond 64 bits', () => `${attackHead('Content-Length: 99999999999999999999999')}\r\n\r\nhello`],
    ['Content-Length with Transfer-Encoding: identity', () => `${attackHead('Content-Length: 5', 'Transfer-Encoding: identity')}\r\n\r\nhello`],
    ['a NUL in a header value', () => `${attackHead('X-Note: a\x00b', 'Content-Length: 5')}\r\n\r\nhello`],
    ['a DEL in a header value', () => `${attackHead('X-Note: a\x7fb', 'Content-Length: 5')}\r\n\r\nhello`],
    ['another control character in a header value', () => `${attackHead('X-Note: a\x01b', 'Content-Length: 5')}\r\n\r\nhello`],
    ['a NUL in a header name', () => `${attackHead('X-No\x00te: ab', 'Content-Length: 5')}\r\n\r\nhello`],
    ['a header line without a colon', () => `${attackHead('Content-Length 5', 'Content-Length: 5')}\r\n\r\nhello`],
    ['Host twice', () => `${attackHead('Host: other', 'Content-Length: 5')}\r\n\r\nhello`],
  ])('%s → 400', async (_label, make) => {
    await attack(make(), [400]);
  });
});

describe('other definite answers', () => {
  test('Transfer-Encoding: gzip, chunked → 501 (only chunked is implemented)', async () => {
    await attack(`${attackHead('Transfer-Encoding: gzip, chunked')}\r\n\r\n${chunked}`, [501]);
  });

  test('CONNECT → 405, not a silent close', async () => {
    await attack('CONNECT victim:443 HTTP/1.1\r\nHost: victim:443\r\n\r\n', [405]);
  });

  test('an HTTP/2 connection preface → 505', async () => {
    await attack('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [505]);
  });

  test('an HTTP/2.0 request line → 505', async () => {
    await attack(`GET /upload HTTP/2.0\r\nHost: test\r\nSession-ID: ${victim.id}\r\n\r\n`, [505]);
  });
});

describe('requests that are fine but end the connection: nothing after them runs', () => {
  test('an upgrade request is answered, then the connection closes (node:http reads no further)', async () => {
    await attack(`GET /upload HTTP/1.1\r\nHost: test\r\nSession-ID: ${victim.id}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`, [200]);
  });

  test('HTTP/1.0 with Transfer-Encoding: chunked is processed, then the connection closes (RFC 9112 §6.1)', async () => {
    const [start, end] = [victim.ranges[0].start, victim.ranges[0].end];
    const body = victim.file.subarray(start, end + 1).toString('latin1');
    const head = segmentHead(victim.id, `bytes ${start}-${end}/${victim.file.length}`, ['Connection: keep-alive', 'Transfer-Encoding: chunked']).replace('HTTP/1.1', 'HTTP/1.0');
    await attack(`${head}\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, [201]);
  });

  test('an answer with Connection: close ends the connection: the pipelined request is never run (RFC 9112 §9.6)', async () => {
    // A malformed Session-ID is refused before the body is read; its unread body is the smuggled request.
    await attack(`${segmentHead('bad.id', 'bytes 0-4/10', ['Content-Length: 5'])}\r\n\r\nhello`, [400]);
  });

  test('a valid request, then a malformed one: the first answered, the second refused, then the connection closes', async () => {
    const [start, end] = [victim.ranges[0].start, victim.ranges[0].end];
    const head = segmentHead(victim.id, `bytes ${start}-${end}/${victim.file.length}`, [`Content-Length: ${end - start + 1}`]);
    const first = Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), victim.file.subarray(start, end + 1)]).toString('latin1');
    await attack(`${first}${attackHead('Content-Length: 5', 'Transfer-Encoding: chunked')}\r\n\r\n${chunked}`, [201, 400]);
  });

  test('a GET whose body is a request: the body is skipped by its Content-Length, never run', async () => {
    const hidden = smuggledSegment('get-body');
    await attack(`GET /upload HTTP/1.1\r\nHost: test\r\nSession-ID: ${victim.id}\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`, [200], { closes: false, smuggled: false });
  });
});

describe('legacy clients keep working', () => {
  test('bare-LF request heads, pipelined on one connection, are both answered (as nginx does)', async () => {
    const query = `GET /upload HTTP/1.1\nHost: test\nSession-ID: ${victim.id}\n\n`;
    const before = await snapshot(gw);
    const res = await exchange(gw.port, `${query}${query.replace('\n\n', '\nConnection: close\n\n')}`);
    expect(res.answers.map((a) => a.status)).toEqual([200, 200]);
    expect(res.answers[1].headers.range).toBe(res.answers[0].headers.range);
    await expectNothingLeaked(gw, before);
  });
});
