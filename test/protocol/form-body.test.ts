import * as fc from 'fast-check';
import { DUMMY_FIELD_NAME, FormBodyBuilder, rawModeBoundary } from '../../src/protocol/form-body';

/** Join lines with CRLF, as in the spec's transcripts. */
const crlf = (...lines: string[]): string => lines.join('\r\n');

function body(b: FormBodyBuilder): string {
  const out = b.finish();
  expect(b.length).toBe(out.length);
  return out.toString('latin1');
}

describe('FormBodyBuilder: exact layout (§4.6)', () => {
  test('no field ever appended → the dummy field', () => {
    const b = new FormBodyBuilder('BND');
    expect(DUMMY_FIELD_NAME).toBe('<ngx_upload_module_dummy>');
    expect(body(b)).toBe(
      '--BND\r\nContent-Disposition: form-data; name="<ngx_upload_module_dummy>"\r\n\r\n\r\n--BND--\r\n',
    );
  });

  test('one field with an empty value (§4.9)', () => {
    const b = new FormBodyBuilder('BND');
    b.appendField('a', '');
    expect(body(b)).toBe('--BND\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n--BND--\r\n');
  });

  test('empty values are emitted between fields', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('md5', '');
    b.appendField('size', '9');
    expect(body(b)).toBe(
      '--B\r\nContent-Disposition: form-data; name="md5"\r\n\r\n' +
        '\r\n--B\r\nContent-Disposition: form-data; name="size"\r\n\r\n9' +
        '\r\n--B--\r\n',
    );
  });

  test('a field with an empty name is skipped', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('', 'ignored');
    b.appendField('x', '1');
    b.appendField('', 'ignored too');
    expect(body(b)).toBe('--B\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--B--\r\n');
  });

  test('only empty names → still the dummy (nothing was appended)', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('', 'v');
    expect(body(b)).toContain(`name="${DUMMY_FIELD_NAME}"`);
  });

  test('NAME and VALUE are inserted verbatim: no escaping of quotes, CR, LF', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('a"b\r\nc', 'x"\r\n--B--\r\n');
    expect(body(b)).toBe('--B\r\nContent-Disposition: form-data; name="a"b\r\nc"\r\n\r\nx"\r\n--B--\r\n\r\n--B--\r\n');
  });

  test('byte strings become latin1 bytes; Buffers are copied as is', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('caf\xe9', 'na\xc3\xafve');
    b.appendField('bin', Buffer.from([0, 255, 13, 10, 128]));
    const out = b.finish();
    const head = Buffer.from('--B\r\nContent-Disposition: form-data; name="caf', 'latin1');
    expect(out.subarray(0, head.length)).toEqual(head);
    expect(out[head.length]).toBe(0xe9);
    expect(out.toString('latin1')).toContain('\r\n\r\nna\xc3\xafve\r\n--B\r\n');
    expect(Buffer.from(out.toString('latin1').split('"bin"\r\n\r\n')[1]!.slice(0, 5), 'latin1')).toEqual(
      Buffer.from([0, 255, 13, 10, 128]),
    );
    expect(out.length).toBe(b.length);
  });

  test('§11.2: the resumable completion body', () => {
    const B = rawModeBoundary(40576652);
    expect(B).toBe('00000000000040576652');
    const b = new FormBodyBuilder(B);
    const fields: Array<[string, string]> = [
      ['name', 'big.TXT'],
      ['content_type', 'application/octet-stream'],
      ['path', '<store>/6/1111215056'],
      ['field', ''],
      ['range', 'bytes 5-8/12'],
      ['number', '1'],
      ['md5', ''],
      ['sha1', ''],
      ['crc32', ''],
      ['size', '9'],
      ['arange', 'bytes 5-8/12'],
      ['anumber', '1'],
    ];
    for (const [n, v] of fields) b.appendField(n, v);
    const D = `--${B}`;
    const cd = (n: string): string => `Content-Disposition: form-data; name="${n}"`;
    const expected =
      crlf(
        D, cd('name'), '', 'big.TXT',
        D, cd('content_type'), '', 'application/octet-stream',
        D, cd('path'), '', '<store>/6/1111215056',
        D, cd('field'), '', '',
        D, cd('range'), '', 'bytes 5-8/12',
        D, cd('number'), '', '1',
        D, cd('md5'), '', '',
        D, cd('sha1'), '', '',
        D, cd('crc32'), '', '',
        D, cd('size'), '', '9',
        D, cd('arange'), '', 'bytes 5-8/12',
        D, cd('anumber'), '', '1',
        `${D}--`,
      ) + '\r\n';
    expect(body(b)).toBe(expected);
  });

  test('§11.3: multipart with files and passed fields (field data appended in chunks)', () => {
    const b = new FormBodyBuilder('XyZ');
    b.appendField('description', '');
    b.appendFieldData('My ');
    b.appendFieldData(Buffer.from('holiday'));
    b.appendField('file1.name', 'beach.jpg');
    b.appendField('file1.content_type', 'image/jpeg');
    b.appendField('file1.path', '<store>/7/0040576617');
    b.appendField('file1.md5', 'bf23ea50d77ee96ece2b71f7d905bfe8');
    b.appendField('file1.size', '8');
    b.appendField('submit', '');
    b.appendFieldData('Upload');
    const cd = (n: string): string => `Content-Disposition: form-data; name="${n}"`;
    const expected =
      crlf(
        '--XyZ', cd('description'), '', 'My holiday',
        '--XyZ', cd('file1.name'), '', 'beach.jpg',
        '--XyZ', cd('file1.content_type'), '', 'image/jpeg',
        '--XyZ', cd('file1.path'), '', '<store>/7/0040576617',
        '--XyZ', cd('file1.md5'), '', 'bf23ea50d77ee96ece2b71f7d905bfe8',
        '--XyZ', cd('file1.size'), '', '8',
        '--XyZ', cd('submit'), '', 'Upload',
        '--XyZ--',
      ) + '\r\n';
    expect(body(b)).toBe(expected);
    expect(b.fieldCount).toBe(7);
  });

  test('appendFieldData without a field throws', () => {
    expect(() => new FormBodyBuilder('B').appendFieldData('x')).toThrow();
  });

  test('an empty boundary is refused', () => {
    expect(() => new FormBodyBuilder('')).toThrow(RangeError);
  });

  test('finish() can be called again and gives the same bytes', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('a', 'b');
    expect(b.finish()).toEqual(b.finish());
  });
});

describe('FormBodyBuilder: rollback (§4.6 rollback quirk)', () => {
  test('all appended fields rolled back → only the closing delimiter, no dummy', () => {
    const b = new FormBodyBuilder('BND');
    const cp = b.checkpoint();
    b.appendField('name', 'x');
    b.appendField('path', 'y');
    b.rollback(cp);
    expect(body(b)).toBe('\r\n--BND--\r\n');
    expect(b.fieldCount).toBe(0);
  });

  test('§3.12 merge failure: the backend gets "\\r\\n--00000000000000000039--\\r\\n" (28 bytes)', () => {
    const b = new FormBodyBuilder(rawModeBoundary(39));
    const cp = b.checkpoint();
    for (const n of ['name', 'content_type', 'path', 'field', 'range', 'number']) b.appendField(n, 'v');
    b.rollback(cp);
    expect(body(b)).toBe('\r\n--00000000000000000039--\r\n');
    expect(b.length).toBe(28);
  });

  test('after a rollback to nothing the next field starts with "--B" again (observed example)', () => {
    // an oversize file as the first part (its set-fields rolled back), then field b
    const b = new FormBodyBuilder('BND');
    const cp = b.checkpoint();
    b.appendField('big.name', 'big');
    b.rollback(cp);
    b.appendField('b', 'after');
    expect(body(b)).toBe('--BND\r\nContent-Disposition: form-data; name="b"\r\n\r\nafter\r\n--BND--\r\n');
  });

  test('§4.8: fields a, aborted file, file ok, field b', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('a', '1');
    const cp = b.checkpoint();
    b.appendField('big.name', 'big');
    b.rollback(cp);
    b.appendField('ok.name', 'ok');
    b.appendField('ok.number', '2');
    b.appendField('ok.size', '10');
    b.appendField('b', '2');
    const names = [...body(b).matchAll(/name="([^"]*)"/g)].map((m) => m[1]);
    expect(names).toEqual(['a', 'ok.name', 'ok.number', 'ok.size', 'b']);
    expect(body(b).startsWith('--B\r\n')).toBe(true);
  });

  test('rolling back part of a field value', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('f', '');
    b.appendFieldData('keep');
    const cp = b.checkpoint();
    b.appendFieldData('drop');
    b.rollback(cp);
    expect(body(b)).toBe('--B\r\nContent-Disposition: form-data; name="f"\r\n\r\nkeep\r\n--B--\r\n');
  });

  test('rollback to the current position changes nothing', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('f', 'v');
    const before = body(b);
    b.rollback(b.checkpoint());
    expect(body(b)).toBe(before);
  });

  test('invalid rollback positions throw', () => {
    const b = new FormBodyBuilder('B');
    b.appendField('f', 'v');
    expect(() => b.rollback(-1)).toThrow(RangeError);
    expect(() => b.rollback(b.checkpoint() + 1)).toThrow(RangeError);
    expect(() => b.rollback(0.5)).toThrow(RangeError);
  });
});

describe('rawModeBoundary (§5.2)', () => {
  test.each<[number, string]>([
    [0, '00000000000000000000'],
    [3, '00000000000000000003'],
    [39, '00000000000000000039'],
    [40576652, '00000000000040576652'],
    [Number.MAX_SAFE_INTEGER, '00009007199254740991'],
  ])('%d → %s', (n, s) => {
    expect(rawModeBoundary(n)).toBe(s);
  });

  test.each([-1, 1.5, NaN, Number.MAX_SAFE_INTEGER + 1])('rejects %d', (n) => {
    expect(() => rawModeBoundary(n)).toThrow(RangeError);
  });
});

// ---- property: random operations against an independent model -----------------------------

type Op =
  | { kind: 'field'; name: string; value: string | Buffer }
  | { kind: 'data'; chunk: string | Buffer }
  | { kind: 'checkpoint' }
  | { kind: 'rollback'; pick: number };

const byteString = fc.string({ unit: 'binary-ascii', maxLength: 12 });
const value = fc.oneof(byteString, fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('field' as const), name: fc.oneof(fc.constant(''), byteString), value }),
  fc.record({ kind: fc.constant('data' as const), chunk: value }),
  fc.record({ kind: fc.constant('checkpoint' as const) }),
  fc.record({ kind: fc.constant('rollback' as const), pick: fc.nat() }),
);

interface ModelField {
  name: string;
  value: string; // latin1
}

/** The body built straight from the spec's template, from a list of fields. */
function modelBody(boundary: string, fields: readonly ModelField[], everAppended: boolean): string {
  const end = `\r\n--${boundary}--\r\n`;
  const field = (f: ModelField, first: boolean): string =>
    `${first ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: form-data; name="${f.name}"\r\n\r\n${f.value}`;
  if (fields.length === 0) {
    return everAppended ? end : field({ name: '<ngx_upload_module_dummy>', value: '' }, true) + end;
  }
  return fields.map((f, i) => field(f, i === 0)).join('') + end;
}

const asLatin1 = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('latin1'));

describe('FormBodyBuilder: properties', () => {
  test('length always equals finish().length, and the body matches the spec template model', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 10 }), fc.array(op, { maxLength: 30 }), (boundary, ops) => {
        const b = new FormBodyBuilder(boundary);
        let fields: ModelField[] = [];
        let everAppended = false;
        const checkpoints: Array<{ pos: number; fields: ModelField[] }> = [];
        for (const o of ops) {
          switch (o.kind) {
            case 'field':
              b.appendField(o.name, o.value);
              if (o.name !== '') {
                fields.push({ name: o.name, value: asLatin1(o.value) });
                everAppended = true;
              }
              break;
            case 'data':
              if (fields.length === 0) {
                expect(() => b.appendFieldData(o.chunk)).toThrow();
              } else {
                b.appendFieldData(o.chunk);
                fields[fields.length - 1]!.value += asLatin1(o.chunk);
              }
              break;
            case 'checkpoint':
              checkpoints.push({ pos: b.checkpoint(), fields: fields.map((f) => ({ ...f })) });
              break;
            case 'rollback': {
              if (checkpoints.length === 0) break;
              const k = o.pick % checkpoints.length;
              const cp = checkpoints[k]!;
              b.rollback(cp.pos);
              fields = cp.fields.map((f) => ({ ...f }));
              checkpoints.length = k + 1; // later checkpoints are no longer meaningful
              break;
            }
          }
          const out = b.finish();
          expect(b.length).toBe(out.length);
          expect(out.toString('latin1')).toBe(modelBody(boundary, fields, everAppended));
          expect(b.fieldCount).toBe(fields.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
