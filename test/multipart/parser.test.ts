import * as fc from 'fast-check';
import { MultipartParser, MultipartSyntaxError, type MultipartEvent } from '../../src/protocol/multipart-parser';

/** A part as the parser reports it: header lines and the data bytes, joined. */
interface Part {
  headers: string[];
  data: string;
  /** Closed by a delimiter (else the body ended inside it). */
  closed: boolean;
}

interface Parsed {
  parts: Part[];
  ended: boolean;
  complete: boolean;
}

function collect(events: MultipartEvent[], into: { parts: Part[]; current: Part | null; chunks: Buffer[]; ended: boolean }): void {
  for (const e of events) {
    switch (e.type) {
      case 'partBegin':
        into.current = { headers: [], data: '', closed: false };
        into.parts.push(into.current);
        into.chunks = [];
        break;
      case 'header':
        into.current!.headers.push(e.line);
        break;
      case 'headersEnd':
        break;
      case 'data':
        expect(e.data.length).toBeGreaterThan(0);
        into.chunks.push(Buffer.from(e.data));
        into.current!.data = Buffer.concat(into.chunks).toString('latin1');
        break;
      case 'partEnd':
        into.current!.closed = true;
        break;
      case 'end':
        into.ended = true;
        break;
    }
  }
}

/** Parses `body` cut at the given offsets. */
function parse(boundary: string, body: string | Buffer, cuts: number[] = [], maxLine = 511): Parsed {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const parser = new MultipartParser(boundary, { maxHeaderLineLength: maxLine });
  const state = { parts: [] as Part[], current: null as Part | null, chunks: [] as Buffer[], ended: false };
  let at = 0;
  for (const cut of [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)) {
    collect(parser.write(bytes.subarray(at, cut)), state);
    at = cut;
  }
  collect(parser.write(bytes.subarray(at)), state);
  return { parts: state.parts, ended: state.ended, complete: parser.complete };
}

/** Parses byte by byte. */
function parseBytewise(boundary: string, body: string): Parsed {
  return parse(boundary, body, Array.from({ length: body.length }, (_, i) => i));
}

function both(boundary: string, body: string): Parsed {
  const whole = parse(boundary, body);
  expect(parseBytewise(boundary, body)).toEqual(whole);
  return whole;
}

const CD = (name: string) => `Content-Disposition: form-data; name="${name}"`;

describe('MultipartParser: the module state machine (§4.2)', () => {
  test('a simple body: two parts, headers, data, closing delimiter', () => {
    const r = both('B', `--B\r\n${CD('a')}\r\n\r\nvalue a\r\n--B\r\n${CD('f')}; filename="x"\r\nContent-Type: text/plain\r\n\r\nfile\r\ndata\r\n--B--\r\n`);
    expect(r).toEqual({
      parts: [
        { headers: [CD('a')], data: 'value a', closed: true },
        { headers: [`${CD('f')}; filename="x"`, 'Content-Type: text/plain'], data: 'file\r\ndata', closed: true },
      ],
      ended: true,
      complete: true,
    });
  });

  test('preamble and epilogue are ignored', () => {
    const r = both('pe', 'This is the preamble.\r\n--pe\r\nX: 1\r\n\r\npayload\r\n--pe--\r\nThis is the epilogue.\r\n--pe\r\nX: 2\r\n\r\nno\r\n');
    expect(r.parts).toEqual([{ headers: ['X: 1'], data: 'payload', closed: true }]);
    expect(r.ended).toBe(true);
  });

  test('naive preamble matcher: "---B" hides the first boundary (the failing byte is not re-tested)', () => {
    const r = both('B', 'x---B\r\nA: 1\r\n\r\nhidden\r\n--B\r\nA: 2\r\n\r\nseen\r\n--B--');
    expect(r.parts).toEqual([{ headers: ['A: 2'], data: 'seen', closed: true }]);
  });

  test('bare LF delimiters and header lines (LF-only body)', () => {
    const r = both('lf', '--lf\nContent-Disposition: form-data; name="file"; filename="lf.txt"\nContent-Type: text/plain\n\nline1\nline2\n--lf--\n');
    expect(r.parts).toEqual([
      { headers: ['Content-Disposition: form-data; name="file"; filename="lf.txt"', 'Content-Type: text/plain'], data: 'line1\nline2', closed: true },
    ]);
    expect(r.ended).toBe(true);
  });

  test('CR bytes are dropped anywhere in part headers', () => {
    const r = both('B', '--B\r\nA\r: \r1\r\r\n\r\r\ndata\r\n--B--');
    expect(r.parts[0]).toEqual({ headers: ['A: 1'], data: 'data', closed: true });
  });

  test('a CR directly before "\\r\\n--B" stays data', () => {
    expect(both('B', '--B\n\nab\r\r\n--B--').parts[0].data).toBe('ab\r');
  });

  test('partial delimiter look-alikes are data, byte for byte', () => {
    const content = '--AaB03x at start\r\n\r\n--AaB03\r\n-AaB03x\r\n--AaB03y\r\nend\r\n-\r\n\n-\n--AaB0\r\r\n';
    const r = both('AaB03x', `--AaB03x\r\nH: 1\r\n\r\n${content}\r\n--AaB03x--\r\n`);
    expect(r.parts).toEqual([{ headers: ['H: 1'], data: content, closed: true }]);
  });

  test('the corpus look-alike body gives the 55 bytes the module stored', () => {
    const r = both('AaB03x', '--AaB03x\r\nContent-Disposition: form-data; name="file"; filename="tricky.txt"\r\n\r\n--AaB03x at start\r\n\r\n--AaB03\r\n-AaB03x\r\n--AaB03y\r\nend\r\n-\r\n--AaB03x--\r\n');
    expect(r.parts[0].data).toBe('--AaB03x at start\r\n\r\n--AaB03\r\n-AaB03x\r\n--AaB03y\r\nend\r\n-');
    expect(r.parts[0].data.length).toBe(55);
  });

  test('after a delimiter: junk before the LF is ignored, a single "-" ends the body', () => {
    expect(both('B', '--Bjunk\r\nA: 1\r\n\r\nx\r\n--B-').parts).toEqual([{ headers: ['A: 1'], data: 'x', closed: true }]);
    const r = both('B', '--B\r\n\r\nx\r\n--BZZ\r\n\r\ny\r\n--B-and the rest');
    expect(r.parts.map((p) => p.data)).toEqual(['x', 'y']);
    expect(r.ended).toBe(true);
  });

  test('a part with no headers and an empty part', () => {
    const r = both('B', '--B\r\n\r\n\r\n--B\r\n\r\nz\r\n--B--');
    expect(r.parts).toEqual([
      { headers: [], data: '', closed: true },
      { headers: [], data: 'z', closed: true },
    ]);
  });

  test('a delimiter-looking line inside part headers is just a header line', () => {
    expect(both('B', '--B\r\n--B\r\n\r\nd\r\n--B--').parts).toEqual([{ headers: ['--B'], data: 'd', closed: true }]);
  });

  test('binary data with every byte value survives', () => {
    const data = Buffer.alloc(512);
    for (let i = 0; i < data.length; i++) data[i] = i % 256;
    const body = Buffer.concat([Buffer.from('--B\r\n\r\n'), data, Buffer.from('\r\n--B--')]);
    const r = parse('B', body, [7, 100, 268, 269, 518, 519]);
    expect(Buffer.from(r.parts[0].data, 'latin1').equals(data)).toBe(true);
  });

  describe('end of body (D16 is decided by the caller from `complete`)', () => {
    test.each([
      ['closing delimiter with CRLF', '--B\r\n\r\nx\r\n--B--\r\n', true],
      ['closing delimiter without trailing CRLF', '--B\r\n\r\nx\r\n--B--', true],
      ['single dash', '--B\r\n\r\nx\r\n--B-', true],
      ['delimiter at EOF', '--B\r\n\r\nx\r\n--B', true],
      ['delimiter and CR at EOF', '--B\r\n\r\nx\r\n--B\r', true],
      ['inside part data', '--B\r\n\r\npartial da', false],
      ['inside a partial delimiter', '--B\r\n\r\nx\r\n--', false],
      ['inside part headers', '--B\r\nContent-Disposition: form-data', false],
      ['after a delimiter LF', '--B\r\n\r\nx\r\n--B\r\n', false],
      ['boundary never found', 'garbage only', false],
      ['empty body', '', false],
    ])('%s', (_name, body, complete) => {
      expect(both('B', body).complete).toBe(complete);
    });
  });

  describe('header line length (upload_max_part_header_len − 1 bytes)', () => {
    const body = (len: number) => `--B\r\n${'h'.repeat(len)}\r\n\r\nx\r\n--B--`;
    test('63 bytes pass with the limit 64, CRs not counted', () => {
      expect(parse('B', body(63), [], 63).parts[0].headers).toEqual(['h'.repeat(63)]);
      expect(parse('B', `--B\r\n${'h\r'.repeat(63)}\r\n\r\nx\r\n--B--`, [], 63).parts[0].headers).toEqual(['h'.repeat(63)]);
    });
    test('64 bytes are rejected, however the body is cut', () => {
      expect(() => parse('B', body(64), [], 63)).toThrow(MultipartSyntaxError);
      expect(() => parse('B', body(64), [10, 30, 69], 63)).toThrow(/longer than 63 bytes/);
    });
    test('a long line in part data is not a header', () => {
      expect(parse('B', `--B\r\n\r\n${'d'.repeat(5000)}\r\n--B--`, [], 63).parts[0].data.length).toBe(5000);
    });
    test('lines grow past the initial buffer', () => {
      expect(parse('B', body(3000), [], 4000).parts[0].headers[0].length).toBe(3000);
    });
  });

  test('empty boundary is refused', () => {
    expect(() => new MultipartParser('', { maxHeaderLineLength: 10 })).toThrow(RangeError);
  });
});

/**
 * A deliberately naive byte-at-a-time model of §4.2, written straight from the spec table, to
 * check the parser's fast paths (indexOf jumps, look-alikes split across chunks) against.
 */
function referenceParse(boundary: string, body: string, maxLine = 511): Parsed | 'too-long' {
  const P = `--${boundary}`;
  const D = `\r\n--${boundary}`;
  const parts: Part[] = [];
  let state: 'preamble' | 'after' | 'headers' | 'data' | 'epilogue' = 'preamble';
  let k = 0;
  let line = '';
  let j = 0;
  let m = '';
  let ended = false;
  let cur: Part | null = null;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    switch (state) {
      case 'preamble':
        if (c === P[k]) {
          if (++k === P.length) state = 'after';
        } else k = 0;
        break;
      case 'after':
        if (c === '\n') {
          state = 'headers';
          line = '';
          cur = { headers: [], data: '', closed: false };
          parts.push(cur);
        } else if (c === '-') {
          state = 'epilogue';
          ended = true;
        }
        break;
      case 'headers':
        if (c === '\r') break;
        if (c === '\n') {
          if (line === '') {
            state = 'data';
            j = 0;
            m = '';
          } else cur!.headers.push(line);
          line = '';
        } else {
          if (line.length >= maxLine) return 'too-long';
          line += c;
        }
        break;
      case 'data':
        for (;;) {
          if (j === 0) {
            if (c === '\r') [m, j] = ['\r', 1];
            else if (c === '\n') [m, j] = ['\n', 2];
            else cur!.data += c;
            break;
          }
          if (j === 1) {
            if (c === '\n') {
              m += c;
              j = 2;
              break;
            }
          } else if (c === D[j]) {
            m += c;
            if (++j === D.length) {
              cur!.closed = true;
              state = 'after';
            }
            break;
          }
          cur!.data += m; // a broken look-alike is data; the byte is examined again
          m = '';
          j = 0;
        }
        break;
      case 'epilogue':
        break;
    }
  }
  return { parts, ended, complete: ended || state === 'after' };
}

describe('MultipartParser: chunking never changes the result (fast-check)', () => {
  const alphabet = ['\r', '\n', '-', 'B', 'x', 'Bx', '--', '--B', '\r\n--B', '\n--B', '\r\n--Bx'];
  const noisy = fc.array(fc.constantFrom(...alphabet), { maxLength: 40 }).map((a) => a.join(''));
  const header = fc.constantFrom('Content-Disposition: form-data; name="a"', 'X-Y: z', 'content-type:text/plain');

  const bodyArb = fc.record({
    preamble: fc.oneof(fc.constant(''), noisy.map((s) => s.replace(/--B/g, '-=B').replace(/-+$/, ''))),
    parts: fc.array(
      fc.record({
        headers: fc.array(header, { maxLength: 3 }),
        data: noisy,
        lf: fc.boolean(),
      }),
      { maxLength: 4 },
    ),
    close: fc.constantFrom('--\r\n', '--', '-', '', '--\r\nepilogue \r\n--B\r\n'),
  });

  test('random bodies cut at random places give identical parts', () => {
    fc.assert(
      fc.property(bodyArb, fc.array(fc.nat({ max: 400 }), { maxLength: 12 }), (b, cuts) => {
        let body = b.preamble ? `${b.preamble}\r\n` : '';
        body += '--B';
        for (const p of b.parts) {
          const nl = p.lf ? '\n' : '\r\n';
          body += nl + p.headers.map((h) => h + nl).join('') + nl + p.data + nl + '--B';
        }
        body += b.close;
        const whole = parse('B', body);
        expect(whole).toEqual(referenceParse('B', body));
        expect(parse('B', body, cuts)).toEqual(whole);
        expect(parseBytewise('B', body)).toEqual(whole);
      }),
      { numRuns: 400 },
    );
  });

  test('arbitrary byte soup matches the reference model, whatever the chunking', () => {
    const soup = fc.array(fc.constantFrom('\r', '\n', '-', 'a', 'b', 'ab', '--ab', '\r\n--ab', 'x'), { maxLength: 80 }).map((a) => a.join(''));
    fc.assert(
      fc.property(soup, fc.array(fc.nat({ max: 200 }), { maxLength: 8 }), (body, cuts) => {
        let expected: Parsed | 'too-long';
        try {
          expected = referenceParse('ab', body, 6);
        } catch {
          expected = 'too-long';
        }
        let actual: Parsed | 'too-long';
        try {
          actual = parse('ab', body, cuts, 6);
        } catch (err) {
          if (!(err instanceof MultipartSyntaxError)) throw err;
          actual = 'too-long';
        }
        expect(actual).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
  });

  test('well-formed bodies round-trip: the data of every part comes back byte for byte', () => {
    const dataArb = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.array(dataArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat({ max: 1500 }), { maxLength: 10 }), (datas, cuts) => {
        const boundary = 'q1-Zx';
        // Data must not contain a delimiter: make sure it does not (a real client picks a boundary that way).
        const clean = datas.map((d) => Buffer.from(d.toString('latin1').replace(/\n--q1-Zx/g, '\n--q1-Zy'), 'latin1'));
        const pieces: Buffer[] = [Buffer.from(`--${boundary}`)];
        for (const d of clean) pieces.push(Buffer.from('\r\nH: v\r\n\r\n'), d, Buffer.from(`\r\n--${boundary}`));
        pieces.push(Buffer.from('--\r\n'));
        const r = parse(boundary, Buffer.concat(pieces), cuts);
        expect(r.parts.map((p) => Buffer.from(p.data, 'latin1'))).toEqual(clean);
        expect(r.ended && r.complete).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
