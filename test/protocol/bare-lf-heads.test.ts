/**
 * BareLfHeadNormalizer: bare-LF request heads become CRLF heads, body bytes never change, and
 * anything it cannot frame for sure makes it pass the rest through unchanged (D24).
 */
import * as fc from 'fast-check';
import { BareLfHeadNormalizer } from '../../src/protocol/bare-lf-heads';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (b: Buffer): string => b.toString('latin1');

/** The normalizer's output for `input` fed in the given pieces. */
function normalize(input: string, cuts: number[] = []): { out: string; passingThrough: boolean } {
  const normalizer = new BareLfHeadNormalizer();
  const buffer = bytes(input);
  const points = [...new Set(cuts.map((c) => c % (buffer.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const to of [...points, buffer.length]) {
    pieces.push(normalizer.push(buffer.subarray(from, to)));
    from = to;
  }
  return { out: text(Buffer.concat(pieces)), passingThrough: normalizer.passingThrough };
}

describe('request heads', () => {
  test('bare LF head lines get their CR; the body is left alone', () => {
    const input = 'POST /u HTTP/1.1\nHost: x\nContent-Length: 7\n\nab\ncd\n\nGET / HTTP/1.1\nHost: y\n\n';
    expect(normalize(input).out).toBe('POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nab\ncd\n\nGET / HTTP/1.1\r\nHost: y\r\n\r\n');
  });

  test('CRLF input is returned as the same buffer', () => {
    const normalizer = new BareLfHeadNormalizer();
    const chunk = bytes('POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok');
    expect(normalizer.push(chunk)).toBe(chunk);
  });

  test('mixed line ends, a CR at the end of one chunk and its LF in the next', () => {
    expect(normalize('GET / HTTP/1.1\r\nHost: x\n\r\n', [15]).out).toBe('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });

  test('empty lines before the request-line (RFC 9112 §2.2)', () => {
    expect(normalize('\n\r\nGET / HTTP/1.1\nHost: x\n\n').out).toBe('\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });

  test('chunked bodies are followed exactly; the next head is normalized', () => {
    const input = 'POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n3;a=b\r\n\n\n\n\r\n0\r\nT: 1\r\n\r\nGET /n HTTP/1.1\nHost: x\n\n';
    expect(normalize(input).out).toBe(
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\n\n\n\n\r\n0\r\nT: 1\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n',
    );
  });
});

describe('anything not framed for sure: the rest passes unchanged', () => {
  const tail = 'GET /smuggled HTTP/1.1\nHost: x\n\n';
  test.each([
    ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\r\n\r\n'],
    ['Transfer-Encoding twice', 'POST / HTTP/1.1\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n0\r\n\r\n'],
    ['a coding other than chunked', 'POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n0\r\n\r\n'],
    ['Content-Length twice', 'POST / HTTP/1.1\nContent-Length: 0\nContent-Length: 0\n\n'],
    ['a Content-Length that is not digits', 'POST / HTTP/1.1\nContent-Length: +0\n\n'],
    ['an obs-fold', 'POST / HTTP/1.1\nX: a\n b\nContent-Length: 0\n\n'],
    ['a bare CR in a head line', 'POST / HTTP/1.1\nX: a\rb\nContent-Length: 0\n\n'],
    ['a space before the colon', 'POST / HTTP/1.1\nContent-Length : 0\n\n'],
    ['a chunk size with a space', 'POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n0 \r\n\r\n'],
    ['a chunk size ended by a bare LF', 'POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n0\n\r\n'],
    ['chunk data not followed by CRLF', 'POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n1\r\naX0\r\n\r\n'],
    ['chunk data followed by a bare LF', 'POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n1\r\na\n0\r\n\r\n'],
    ['a huge chunk size', 'POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n10000000000000\r\n'],
    ['CONNECT', 'CONNECT x:1 HTTP/1.1\nHost: x:1\n\n'],
    ['an upgrade', 'GET / HTTP/1.1\nConnection: Upgrade\nUpgrade: h2c\n\n'],
    ['Connection: close', 'GET / HTTP/1.1\nConnection: close\n\n'],
    ['HTTP/1.0 without keep-alive', 'GET / HTTP/1.0\n\n'],
    ['HTTP/2.0', 'GET / HTTP/2.0\n\n'],
    ['no version', 'GET /\n\n'],
    ['HTTP/1.0 with Transfer-Encoding', 'POST / HTTP/1.0\nConnection: keep-alive\nTransfer-Encoding: chunked\n\n0\r\n\r\n'],
  ])('%s', (_label, message) => {
    const { out, passingThrough } = normalize(message + tail);
    expect(passingThrough).toBe(true);
    // The smuggled-looking tail is never normalized, so a strict parser can never take it for a request.
    expect(out.endsWith(tail)).toBe(true);
  });

  test('HTTP/1.0 with keep-alive goes on', () => {
    expect(normalize('GET / HTTP/1.0\nConnection: keep-alive\n\nGET /b HTTP/1.1\nHost: x\n\n').out).toBe(
      'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    );
  });
});

describe('properties', () => {
  const lineEnd = fc.constantFrom('\n', '\r\n');
  const bodyBytes = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 40 });
  const fieldValue = fc.string({ unit: fc.constantFrom('a', 'b', ' ', '\t', ':', '\xe9', '\xff', '-'), maxLength: 10 });
  const request = fc.record({
    ends: fc.array(lineEnd, { minLength: 6, maxLength: 6 }),
    extra: fc.array(fc.tuple(fc.constantFrom('X-A', 'Session-ID', 'Content-Type', 'Content-Disposition'), fieldValue), { maxLength: 3 }),
    body: bodyBytes,
    chunked: fc.boolean(),
    cuts: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 }),
  });

  /** The request with the chosen line ends in its head, and the CRLF-only version. */
  function build(r: { ends: string[]; extra: Array<[string, string]>; body: string; chunked: boolean; cuts: number[] }): [string, string] {
    const lines = ['POST /upload HTTP/1.1', 'Host: x', ...r.extra.map(([k, v]) => `${k}:${v}`)];
    let body: string;
    if (r.chunked) {
      lines.push('Transfer-Encoding: chunked');
      let at = 0;
      body = '';
      for (const cut of [...r.cuts, r.body.length]) {
        const piece = r.body.slice(at, Math.max(at, Math.min(cut, r.body.length)));
        if (piece.length > 0) body += `${piece.length.toString(16)}\r\n${piece}\r\n`;
        at += piece.length;
      }
      body += '0\r\n\r\n';
    } else {
      lines.push(`Content-Length: ${r.body.length}`);
      body = r.body;
    }
    const head = lines.map((line, i) => line + r.ends[i % r.ends.length]).join('') + r.ends[5];
    return [head + body, lines.map((line) => `${line}\r\n`).join('') + '\r\n' + body];
  }

  test('a sequence of requests with bare-LF or CRLF heads becomes the CRLF sequence, bodies unchanged, however it is cut', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(2000), { maxLength: 6 }), (requests, cuts) => {
        const built = requests.map(build);
        const input = built.map(([raw]) => raw).join('');
        const expected = built.map(([, crlf]) => crlf).join('');
        const { out, passingThrough } = normalize(input, cuts);
        expect(out).toBe(expected);
        expect(passingThrough).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  test('never throws, and only ever inserts CR bytes before LF bytes', () => {
    const anyBytes = fc.string({ unit: fc.oneof(fc.constantFrom('\r', '\n', ' ', ':', '0', 'GET / HTTP/1.1', 'Content-Length: 3', 'Transfer-Encoding: chunked'), fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c))), maxLength: 60 });
    fc.assert(
      fc.property(anyBytes, fc.array(fc.nat(200), { maxLength: 4 }), (input, cuts) => {
        const { out } = normalize(input, cuts);
        // Removing each CR that directly precedes an LF and was not in the input gives the input back.
        let i = 0;
        let j = 0;
        while (i < input.length || j < out.length) {
          if (out[j] === input[i]) {
            i++;
            j++;
          } else {
            expect(out[j]).toBe('\r');
            expect(out[j + 1]).toBe('\n');
            expect(input[i]).toBe('\n');
            j++;
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
