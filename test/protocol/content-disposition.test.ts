import * as fc from 'fast-check';
import { decodeExtValue, parseContentDisposition, stripPath } from '../../src/protocol/content-disposition';

interface Parsed {
  type: 'form-data' | 'attachment';
  fileName: string;
  fieldName: string;
  hasFileNameParam: boolean;
}

function parse(value: string): Parsed {
  const r = parseContentDisposition(value);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(value)} to parse, got: ${r.reason}`);
  const { type, fileName, fieldName, hasFileNameParam } = r;
  return { type, fileName, fieldName, hasFileNameParam };
}

/** [file name, field name] */
function names(value: string): [string, string] {
  const p = parse(value);
  return [p.fileName, p.fieldName];
}

/** A JS string as a UTF-8 byte string (what arrives on the wire). */
const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

describe('spec §3.2 table: where the module and the gateway agree', () => {
  test.each<[string, string, string]>([
    ['attachment; filename="big.TXT"', 'big.TXT', ''],
    ['attachment; filename=unq.txt', 'unq.txt', ''],
    ['attachment, filename="comma.txt"', 'comma.txt', ''],
    ['form-data; name="upfile[]"; filename="C:\\x\\y\\my file.txt"', 'my file.txt', 'upfile[]'],
    ['attachment', '', ''],
    ['attachment; filename=', '', ''],
    ['attachment; filename="', '', ''],
    // conformance corpus cases without deviation
    ['attachment; filename=my file.txt', 'my file.txt', ''], // unquoted values keep spaces
    ['form-data; name="blob"', '', 'blob'],
    ['attachment; filename="report.pdf"', 'report.pdf', ''],
    ['form-data; name="file"; filename="D:\\Documents And Settings\\My Documents\\My Pictures\\Picture.jpg"', 'Picture.jpg', 'file'],
    // §11.3
    ['form-data; name="file1"; filename="C:\\Pics\\beach.jpg"', 'beach.jpg', 'file1'],
    ['form-data; name="description"', '', 'description'],
    // §4.3 / §4.9
    ['attachment; name="a"', '', 'a'],
    ['form-data;name="lc"', '', 'lc'],
    ['form-data; name="a"', '', 'a'],
  ])('%s', (value, file, field) => {
    expect(names(value)).toEqual([file, field]);
  });

  test('path stripping of the examples: C:\\Docs and Settings\\Pics\\p.jpg, /etc/passwd, a/b\\c, dir/', () => {
    expect(names('attachment; filename="C:\\Docs and Settings\\Pics\\p.jpg"')[0]).toBe('p.jpg');
    expect(names('attachment; filename="/etc/passwd"')[0]).toBe('passwd');
    expect(names('attachment; filename="a/b\\c"')[0]).toBe('c');
    expect(names('attachment; filename="dir/"')[0]).toBe('');
    expect(names('attachment;filename="a/b/c.txt"')[0]).toBe('c.txt');
  });

  test('a trailing separator gives an empty file name but the parameter was there', () => {
    expect(parse('form-data; name="f"; filename=dir/')).toEqual({
      type: 'form-data',
      fileName: '',
      fieldName: 'f',
      hasFileNameParam: true,
    });
  });

  test('values are raw bytes: a UTF-8 filename= is passed through undecoded', () => {
    expect(names(`form-data; name="f"; filename="${utf8('café ü.txt')}"`)[0]).toBe(utf8('café ü.txt'));
    expect(names('attachment; filename=caf\xe9.txt')[0]).toBe('caf\xe9.txt');
  });

  test('the disposition type is reported in lower case', () => {
    expect(parse('ATTACHMENT; filename=x').type).toBe('attachment');
    expect(parse('Form-Data; name=x').type).toBe('form-data');
    expect(parse('form-data').type).toBe('form-data');
  });

  test('surrounding whitespace of the header value is ignored', () => {
    expect(names('  \tattachment; filename="x.bin"\t ')).toEqual(['x.bin', '']);
  });
});

describe('rejected values (the module closes the connection, the gateway answers 400: D1)', () => {
  test.each([
    'inline; filename="a"',
    'inline',
    'attachmentX; filename="a"', // D11: the module accepts any value starting with the type
    'form-dataX; name="a"',
    'form-data-x; name="a"',
    'attachments',
    'filename="a.txt"',
    'name="a"; form-data',
    '"attachment"; filename=a',
    'attachment/x; filename=a',
    '; filename=a',
    ', filename=a',
    '=',
  ])('%j', (value) => {
    const r = parseContentDisposition(value);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/^invalid Content-Disposition ".*": type must be form-data or attachment$/);
  });

  test.each(['', ' ', '\t \t'])('empty value %j', (value) => {
    expect(parseContentDisposition(value)).toEqual({ ok: false, reason: 'empty Content-Disposition' });
  });

  test('the reason is a single printable line', () => {
    const r = parseContentDisposition('inline\r\nX: \u00ff');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/^[\x20-\x7e]+$/);
  });
});

describe('D11: real parameter parsing instead of substring search', () => {
  test('D11: name= does not match inside filename= (module: field name "" / the unstripped path)', () => {
    expect(names('form-data; filename="ff.txt"; name="nm"')).toEqual(['ff.txt', 'nm']);
    expect(names('form-data; filename="C:\\dir\\a.txt"; name="f"')).toEqual(['a.txt', 'f']);
    expect(names('attachment;filename="a/b/c.txt"')).toEqual(['c.txt', '']);
    expect(names('attachment; filename="/etc/passwd"')).toEqual(['passwd', '']);
    expect(names('attachment; filename="name=x"')).toEqual(['name=x', '']);
    expect(names('form-data; xname="a"; name="b"')).toEqual(['', 'b']);
  });

  test('D11: parameter names are case-insensitive (module: FILENAME= not recognised)', () => {
    expect(names('ATTACHMENT; FILENAME="up.txt"')).toEqual(['up.txt', '']);
    expect(names('form-data; NAME="a"; FileName="b.txt"')).toEqual(['b.txt', 'a']);
  });

  test('D11: a quoted value may contain ";" (module cuts it: "a;b.txt" → "a")', () => {
    expect(names('attachment; filename="a;b.txt"')).toEqual(['a;b.txt', '']);
    expect(names('form-data; name="f;f"')).toEqual(['', 'f;f']);
    expect(names('form-data; name="a;b"; filename="c;d.txt"')).toEqual(['c;d.txt', 'a;b']);
  });

  test('D11: backslash escapes in quoted strings (module: "q\\"x" → q\\)', () => {
    expect(names('form-data; name="q\\"x"')).toEqual(['', 'q"x']);
    expect(names('form-data; name="a\\\\b"')).toEqual(['', 'a\\b']);
    expect(names('attachment; filename="say \\"hi\\".txt"')).toEqual(['say "hi".txt', '']);
    // an escaped backslash is still a path separator afterwards
    expect(names('attachment; filename="C:\\\\dir\\\\x.txt"')).toEqual(['x.txt', '']);
  });

  test('D11: a backslash before any other character is literal, so browser DOS paths work', () => {
    expect(names('form-data; name="a\\b"')).toEqual(['', 'a\\b']);
    expect(names('attachment; filename="\\\\server\\share\\f.txt"')).toEqual(['f.txt', '']);
  });

  test('D11: leading separators are stripped too (module keeps "/passwd" and "\\x": Q15)', () => {
    expect(names('attachment; filename="/passwd"')[0]).toBe('passwd');
    expect(names('attachment; filename="\\x"')[0]).toBe('x');
    expect(names('attachment; filename=/')[0]).toBe('');
  });

  test('D11: the legacy comma form', () => {
    expect(names('attachment,filename="x"')).toEqual(['x', '']);
    expect(names('attachment, filename="x"')).toEqual(['x', '']);
    expect(names('attachment ,filename="x"')).toEqual(['x', '']);
    expect(names('form-data, name="a"; filename="b"')).toEqual(['b', 'a']);
  });

  test('D11: whitespace around ";" and "=" is tolerated', () => {
    expect(names('form-data ; name = "a" ; filename = "b.txt" ')).toEqual(['b.txt', 'a']);
    expect(names('form-data;\tname\t=\ta;\tfilename=\tb.txt\t')).toEqual(['b.txt', 'a']);
    expect(names('form-data;name=a;filename=b.txt')).toEqual(['b.txt', 'a']);
    expect(names('attachment filename=x.txt')).toEqual(['x.txt', '']);
  });

  test('D11: malformed or unknown parameters are ignored, not rejected', () => {
    expect(names('form-data; foo; name="a"; =x; bar=; filename="f"')).toEqual(['f', 'a']);
    expect(names('form-data; name="a"; garbage')).toEqual(['', 'a']);
    expect(names('form-data;; ;name=a;;')).toEqual(['', 'a']);
    expect(names('form-data; size=12; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"; name=a')).toEqual(['', 'a']);
    expect(names('form-data; name="a"junk; filename="f.txt"more')).toEqual(['f.txt', 'a']);
  });

  test('D11: the first occurrence of a parameter wins', () => {
    expect(names('form-data; name="first"; name="second"; filename="1"; filename="2"')).toEqual(['1', 'first']);
  });

  test('D11: an unterminated quoted string runs to the end of the value', () => {
    expect(names('attachment; filename="abc.txt')).toEqual(['abc.txt', '']);
    expect(names('form-data; filename="x; name=y')).toEqual(['x; name=y', '']);
  });

  test('D11: empty values', () => {
    expect(parse('form-data; name=""; filename=""')).toEqual({
      type: 'form-data',
      fileName: '',
      fieldName: '',
      hasFileNameParam: true,
    });
    expect(parse('form-data; name="f"').hasFileNameParam).toBe(false);
  });
});

describe('D11: filename* (RFC 5987 / 8187)', () => {
  const decoded = (value: string): string => Buffer.from(parse(value).fileName, 'latin1').toString('utf8');

  test("D11: attachment; filename*=UTF-8''na%C3%AFve.txt → naïve.txt (module: empty name)", () => {
    const p = parse("attachment; filename*=UTF-8''na%C3%AFve.txt");
    expect(p.fileName).toBe('na\xc3\xafve.txt');
    expect(Buffer.from(p.fileName, 'latin1')).toEqual(Buffer.from('naïve.txt', 'utf8'));
    expect(p.hasFileNameParam).toBe(true);
    expect(p.fieldName).toBe('');
  });

  test('D11: filename* takes precedence over filename, in either order', () => {
    expect(decoded("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt")).toBe('€ rates.txt');
    expect(decoded("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt; filename=\"fallback.txt\"")).toBe('€ rates.txt');
  });

  test('D11: ISO-8859-1 is converted to UTF-8; charset and parameter name in any case', () => {
    expect(decoded("attachment; filename*=iso-8859-1'en'%A3%20rates.txt")).toBe('£ rates.txt');
    expect(decoded("attachment; FILENAME*=ISO-8859-1''caf%E9")).toBe('café');
    expect(decoded("attachment; filename*=utf-8''x%c3%bc")).toBe('xü');
  });

  test('D11: a language tag is allowed', () => {
    expect(decoded("attachment; filename*=UTF-8'de-DE'Gr%C3%BC%C3%9Fe.txt")).toBe('Grüße.txt');
  });

  test('D11: a quoted filename* is tolerated', () => {
    expect(decoded("attachment; filename*=\"UTF-8''a%20b.txt\"")).toBe('a b.txt');
  });

  test('D11: path elements are stripped from the decoded name', () => {
    expect(decoded("attachment; filename*=UTF-8''dir%2Fsub%5Cx.txt")).toBe('x.txt');
  });

  test.each([
    "UTF-8''%FF.txt", // invalid UTF-8
    "UTF-8''%C3", // truncated sequence
    "UTF-8''%G1", // bad escape
    "UTF-8''%4", // short escape
    "KOI8-R''x", // unsupported charset
    "''x", // no charset
    'UTF-8x.txt', // no quotes
    "UTF-8'x.txt", // one quote
  ])('D11: an undecodable filename*=%s falls back to filename (or to no name)', (star) => {
    expect(parse(`attachment; filename="fb.txt"; filename*=${star}`)).toEqual({
      type: 'attachment',
      fileName: 'fb.txt',
      fieldName: '',
      hasFileNameParam: true,
    });
    expect(parse(`attachment; filename*=${star}`)).toEqual({
      type: 'attachment',
      fileName: '',
      fieldName: '',
      hasFileNameParam: true,
    });
  });

  test('decodeExtValue', () => {
    expect(decodeExtValue("UTF-8''abc")).toBe('abc');
    expect(decodeExtValue("UTF-8''")).toBe('');
    expect(decodeExtValue("iso-8859-1''%FF")).toBe('\xc3\xbf');
    expect(decodeExtValue("UTF-8''%F0%9F%98%80")).toBe(utf8('😀'));
    expect(decodeExtValue("UTF-8''%ED%A0%80")).toBeNull(); // UTF-8-encoded surrogate
    expect(decodeExtValue("utf-16''%00a")).toBeNull();
  });
});

describe('stripPath', () => {
  test.each<[string, string]>([
    ['C:\\Docs and Settings\\Pics\\p.jpg', 'p.jpg'],
    ['C:\\Docs\\p.jpg', 'p.jpg'],
    ['/etc/passwd', 'passwd'],
    ['a/b\\c', 'c'],
    ['a\\b/c', 'c'],
    ['dir/', ''],
    ['dir\\', ''],
    ['/passwd', 'passwd'], // D11 (module: kept, Q15)
    ['\\x', 'x'], // D11 (module: kept, Q15)
    ['plain.txt', 'plain.txt'],
    ['', ''],
    ['../../x', 'x'],
  ])('%j → %j', (input, expected) => {
    expect(stripPath(input)).toBe(expected);
  });

  test('result is a separator-free suffix of the input, and stripping is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', '/', '\\', '.', ' ') }), (s) => {
        const r = stripPath(s);
        expect(s.endsWith(r)).toBe(true);
        expect(r).not.toMatch(/[/\\]/);
        expect(stripPath(r)).toBe(r);
        // nothing separator-free was dropped: the char before the result is a separator
        if (r.length < s.length) expect(s[s.length - r.length - 1]).toMatch(/[/\\]/);
      }),
    );
  });
});

describe('properties', () => {
  /** Bytes without control characters (HTAB allowed): what a name may hold (D26). */
  const byteString = fc.string({
    unit: fc.oneof(fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f), fc.constant(0x09)).map((c) => String.fromCharCode(c)),
    maxLength: 20,
  });
  const control = fc.oneof(fc.integer({ min: 0, max: 0x1f }).filter((c) => c !== 0x09), fc.constant(0x7f)).map((c) => String.fromCharCode(c));
  const quote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => '\\' + c)}"`;
  const ows = fc.constantFrom('', ' ', '\t', '  ');
  const caseOf = (word: string, flips: boolean[]): string =>
    [...word].map((c, i) => (flips[i % flips.length] ? c.toUpperCase() : c)).join('');

  test('any name and filename, properly quoted, in any order/case/spacing, parse back exactly', () => {
    fc.assert(
      fc.property(
        fc.record({
          type: fc.constantFrom('form-data', 'attachment'),
          name: byteString,
          filename: byteString,
          nameFirst: fc.boolean(),
          flips: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
          ws: fc.array(ows, { minLength: 6, maxLength: 6 }),
          extra: fc.boolean(),
        }),
        ({ type, name, filename, nameFirst, flips, ws, extra }) => {
          const pName = `${caseOf('name', flips)}${ws[0]}=${ws[1]}${quote(name)}`;
          const pFile = `${caseOf('filename', flips)}${ws[2]}=${ws[3]}${quote(filename)}`;
          const params = nameFirst ? [pName, pFile] : [pFile, pName];
          if (extra) params.splice(1, 0, 'x-junk="a;b"', 'novalue');
          const header = caseOf(type, flips) + params.map((p) => `${ws[4]};${ws[5]}${p}`).join('');
          const r = parseContentDisposition(header);
          expect(r).toEqual({ ok: true, type, fileName: stripPath(filename), fieldName: name, hasFileNameParam: true });
        },
      ),
      { numRuns: 500 },
    );
  });

  test('filename* round-trips any UTF-8 name through percent-encoding; control characters are refused (D26)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), (name) => {
        const encoded = encodeURIComponent(name).replace(/'/g, '%27');
        const r = parseContentDisposition(`attachment; filename*=UTF-8''${encoded}; filename="x"`);
        const wellFormed = Buffer.from(name, 'utf8').toString('utf8') === name; // no lone surrogates
        if (/[\x00-\x08\x0a-\x1f\x7f]/.test(name)) {
          expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/^control character in the filename\* /) });
        } else if (wellFormed) {
          expect(r).toMatchObject({ ok: true, fileName: stripPath(utf8(name)) });
        }
      }),
    );
  });

  test('a control character anywhere in the value is refused with a printable one-line reason (D26)', () => {
    fc.assert(
      fc.property(byteString, control, byteString, fc.constantFrom('name', 'filename', 'x'), (before, ctl, after, param) => {
        const r = parseContentDisposition(`form-data; ${param}="${before}${ctl}${after}"`);
        expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/^control character in Content-Disposition [\x20-\x7e]+$/) });
      }),
      { numRuns: 300 },
    );
  });

  test('never throws on arbitrary input; accepted values start with one of the two types', () => {
    const alphabet = fc.constantFrom(...'form-datattachmentFILE=;," \\\t*\'%C3x'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: alphabet, maxLength: 40 }), fc.string({ unit: 'binary-ascii' })), (s) => {
        const r = parseContentDisposition(s);
        if (r.ok) {
          expect(s.replace(/^[ \t]+/, '').toLowerCase()).toMatch(/^(form-data|attachment)([;, \t]|$)/);
          expect(r.fileName).not.toMatch(/[/\\]/);
        } else {
          expect(r.reason).toMatch(/^[\x20-\x7e]+$/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
