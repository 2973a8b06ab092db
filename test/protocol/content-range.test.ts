import * as fc from 'fast-check';
import { formatContentRange, parseContentRange, SegmentRange } from '../../src/protocol/content-range';

const MAX = Number.MAX_SAFE_INTEGER;

function ok(value: string): SegmentRange {
  const r = parseContentRange(value);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(value)} to parse, got: ${r.reason}`);
  return r.range;
}

function reason(value: string): string {
  const r = parseContentRange(value);
  if (r.ok) throw new Error(`expected ${JSON.stringify(value)} to be rejected, got ${JSON.stringify(r.range)}`);
  return r.reason;
}

describe('parseContentRange: accepted forms (copied from the module, §3.4)', () => {
  test.each<[string, SegmentRange]>([
    ['bytes 0-4/12', { start: 0, end: 4, total: 12 }],
    ['bytes 9-11/12', { start: 9, end: 11, total: 12 }],
    ['bytes 5-8/12', { start: 5, end: 8, total: 12 }],
    ['bytes 0-0/1', { start: 0, end: 0, total: 1 }],
    ['bytes 0-3/4', { start: 0, end: 3, total: 4 }],
    ['bytes 2-2/3', { start: 2, end: 2, total: 3 }],
    // leading zeros are accepted and disappear
    ['bytes 00-04/010', { start: 0, end: 4, total: 10 }],
    ['bytes 000-000/001', { start: 0, end: 0, total: 1 }],
    // the unit is case-insensitive
    ['BYTES 0-3/4', { start: 0, end: 3, total: 4 }],
    ['Bytes 1-2/4', { start: 1, end: 2, total: 4 }],
    ['bYtEs 1-1/2', { start: 1, end: 1, total: 2 }],
    // huge offsets are fine (a segment at 1 TiB)
    ['bytes 1099511627776-1099511627779/1099511627780', { start: 1099511627776, end: 1099511627779, total: 1099511627780 }],
  ])('%s', (value, expected) => {
    expect(ok(value)).toEqual(expected);
  });

  test('D13: numbers up to 2^53-1 are accepted', () => {
    expect(ok(`bytes 0-0/${MAX}`)).toEqual({ start: 0, end: 0, total: MAX });
    expect(ok(`bytes ${MAX - 1}-${MAX - 1}/${MAX}`)).toEqual({ start: MAX - 1, end: MAX - 1, total: MAX });
    expect(ok(`bytes 0-${MAX - 1}/0000${MAX}`)).toEqual({ start: 0, end: MAX - 1, total: MAX });
  });
});

describe('parseContentRange: rejected forms (the module rejects them too, §3.4)', () => {
  test.each([
    'bytes=0-4/10', // no space
    'bytes  0-4/10', // two spaces
    'bytes\t0-4/10', // tab instead of space
    '0-4/10', // no unit
    'items 0-3/4', // wrong unit
    'byte 0-3/4',
    'bytes',
    'bytes ',
    'bytes 0-4/0', // total 0
    'bytes 0-0/0',
    'bytes 4-0/10', // end before start
    'bytes 3-0/4',
    'bytes 5-9/5', // start == total
    'bytes 0-4/4', // end == total
    'bytes 0-3', // no total
    'bytes 0-3/*', // unknown total
    'bytes */4',
    'bytes 0-4/+10',
    'bytes +0-4/10',
    'bytes 0 -4/10',
    'bytes 0-4/10 ',
    ' bytes 0-4/10',
    'bytes 0-4/10,5-6/10',
    'bytes 0-4/1e3',
    'bytes 0x0-0x4/10',
    'bytes 0-4/10/10',
    'bytes 0--4/10',
    'bytes 0-4-5/10',
    'bytes 0.0-4/10',
    'bytes 0-4/\uff11\uff10', // full-width digits
  ])('%j', (value) => {
    expect(parseContentRange(value).ok).toBe(false);
  });

  test('an empty value is rejected', () => {
    expect(reason('')).toBe('empty Content-Range');
  });
});

describe('parseContentRange: D13 fixes', () => {
  test.each(['bytes -3/4', 'bytes -4/10', 'bytes 0-/4', 'bytes 1-/4', 'bytes 0-3/', 'bytes -/4', 'bytes --'])(
    'D13: an empty number is rejected, not read as 0: %j',
    (value) => {
      expect(parseContentRange(value).ok).toBe(false);
    },
  );

  test.each([
    `bytes 0-0/${MAX + 1}`, // 2^53
    'bytes 0-0/9007199254740993',
    'bytes 0-0/9223372036854775807', // 2^63-1: accepted by the module
    'bytes 0-0/9223372036854775808', // wraps negative in the module
    'bytes 0-0/18446744073709551621', // 2^64+5: the module wraps it to 5 and accepts it
    'bytes 0-4/18446744073709551621',
    'bytes 18446744073709551616-0/5', // the module wraps the start to 0
    `bytes ${MAX + 1}-${MAX + 1}/${MAX + 2}`,
    'bytes 0-0/99999999999999999999999999999999999999',
  ])('D13: numbers above 2^53-1 are rejected, never wrapped: %s', (value) => {
    expect(reason(value)).toMatch(/2\^53-1/);
  });

  test('D13: leading zeros do not count towards the size limit', () => {
    expect(ok(`bytes 0-0/${'0'.repeat(40)}${MAX}`).total).toBe(MAX);
  });
});

describe('parseContentRange: reasons', () => {
  test('the example from the brief', () => {
    expect(reason('bytes 4-0/10')).toBe('invalid Content-Range "bytes 4-0/10": end before start');
  });

  test.each<[string, RegExp]>([
    ['bytes 0-4/0', /total is 0/],
    ['bytes 0-4/4', /end not below total/],
    ['bytes=0-4/4', /unit/],
    ['bytes 0-3/*', /"\*"/],
    ['bytes 0-3', /START-END\/TOTAL/],
    ['bytes -3/4', /empty number/],
  ])('%s', (value, re) => {
    expect(reason(value)).toMatch(re);
  });

  test('reasons are one printable ASCII line even for hostile values', () => {
    const r = reason('bytes 0-1/2\r\nX-Evil: 1\u00ff\u0000' + 'x'.repeat(500));
    expect(r).toMatch(/^[\x20-\x7e]+$/);
    expect(r).toContain('\\x0d\\x0a');
    expect(r.length).toBeLessThan(200);
  });
});

test('formatContentRange gives the $upload_content_range form with normalised numbers', () => {
  expect(formatContentRange(ok('bytes 005-08/012'))).toBe('bytes 5-8/12');
});

// ---- property tests --------------------------------------------------------------------------

/** Valid triples, biased towards both small and huge numbers. */
const validTriple: fc.Arbitrary<SegmentRange> = fc
  .oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: MAX }))
  .chain((total) =>
    fc
      .integer({ min: 0, max: total - 1 })
      .chain((end) => fc.integer({ min: 0, max: end }).map((start) => ({ start, end, total }))),
  );

const unitSpelling = fc
  .array(fc.boolean(), { minLength: 5, maxLength: 5 })
  .map((ups) => [...'bytes'].map((c, i) => (ups[i] ? c.toUpperCase() : c)).join(''));

const zeros = fc.nat(3).map((n) => '0'.repeat(n));

function render(unit: string, t: SegmentRange, z: [string, string, string]): string {
  return `${unit} ${z[0]}${t.start}-${z[1]}${t.end}/${z[2]}${t.total}`;
}

const wellFormed = fc.record({
  t: validTriple,
  unit: unitSpelling,
  z: fc.tuple(zeros, zeros, zeros),
});

describe('parseContentRange: properties', () => {
  test('accepts every well-formed string of a valid triple and returns the triple', () => {
    fc.assert(
      fc.property(wellFormed, ({ t, unit, z }) => {
        const r = parseContentRange(render(unit, t, z));
        expect(r).toEqual({ ok: true, range: t });
      }),
      { numRuns: 500 },
    );
  });

  const nonDigit = fc.integer({ min: 0, max: 255 }).filter((c) => c < 0x30 || c > 0x39).map((c) => String.fromCharCode(c));

  test('inserting any non-digit byte anywhere makes it invalid', () => {
    fc.assert(
      fc.property(wellFormed, nonDigit, fc.nat(), ({ t, unit, z }, ch, at) => {
        const s = render(unit, t, z);
        const i = at % (s.length + 1);
        expect(parseContentRange(s.slice(0, i) + ch + s.slice(i)).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  test('deleting any non-digit character makes it invalid', () => {
    fc.assert(
      fc.property(wellFormed, fc.nat(), ({ t, unit, z }, at) => {
        const s = render(unit, t, z);
        const positions = [...s].map((c, i) => (/[0-9]/.test(c) ? -1 : i)).filter((i) => i >= 0);
        const i = positions[at % positions.length]!;
        expect(parseContentRange(s.slice(0, i) + s.slice(i + 1)).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  test('emptying any number makes it invalid (D13)', () => {
    fc.assert(
      fc.property(validTriple, fc.integer({ min: 0, max: 2 }), (t, which) => {
        const nums = [String(t.start), String(t.end), String(t.total)];
        nums[which] = '';
        expect(parseContentRange(`bytes ${nums[0]}-${nums[1]}/${nums[2]}`).ok).toBe(false);
      }),
    );
  });

  test('breaking a bound makes it invalid', () => {
    const broken = validTriple.chain((t) =>
      fc.oneof(
        // end before start: some start above end
        fc.integer({ min: t.end + 1, max: MAX }).map((start) => ({ ...t, start })),
        // end at or beyond total
        fc.integer({ min: t.total, max: MAX }).map((end) => ({ ...t, end })),
        // total 0
        fc.constant({ ...t, total: 0 }),
      ),
    );
    fc.assert(
      fc.property(broken, (t) => {
        expect(parseContentRange(`bytes ${t.start}-${t.end}/${t.total}`).ok).toBe(false);
      }),
    );
  });

  test('a number above 2^53-1 makes it invalid (D13)', () => {
    fc.assert(
      fc.property(
        validTriple,
        fc.integer({ min: 0, max: 2 }),
        fc.bigInt({ min: BigInt(MAX) + 1n, max: 2n ** 70n }),
        (t, which, big) => {
          const nums = [String(t.start), String(t.end), String(t.total)];
          nums[which] = big.toString();
          expect(parseContentRange(`bytes ${nums[0]}-${nums[1]}/${nums[2]}`).ok).toBe(false);
        },
      ),
    );
  });

  test('never throws, and anything accepted is a valid triple', () => {
    const alphabet = fc.constantFrom(...'bytesBYTES 0123456789-/*+,\t'.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: alphabet, maxLength: 30 }), fc.string({ unit: 'binary-ascii' })), (s) => {
        const r = parseContentRange(s);
        if (r.ok) {
          const { start, end, total } = r.range;
          expect(Number.isSafeInteger(start) && Number.isSafeInteger(end) && Number.isSafeInteger(total)).toBe(true);
          expect(0 <= start && start <= end && end < total).toBe(true);
          expect(s).toMatch(/^bytes [0-9]+-[0-9]+\/[0-9]+$/i);
        } else {
          expect(r.reason).toMatch(/^[\x20-\x7e]+$/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
