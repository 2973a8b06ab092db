import * as fc from 'fast-check';
import {
  addRange,
  ByteRange,
  coveredBytes,
  formatRangeList,
  intersect,
  isComplete,
  overlaps,
  parseRangeList,
  subtract,
} from '../../src/protocol/range-set';

const r = (start: number, end: number): ByteRange => ({ start, end });
const build = (...ranges: Array<[number, number]>): ByteRange[] =>
  ranges.reduce<ByteRange[]>((set, [s, e]) => addRange(set, r(s, e)), []);

describe('addRange: the merge examples of §3.9', () => {
  test('adjacent ranges merge: 0-1 + 2-3 → 0-3', () => {
    expect(build([0, 1], [2, 3])).toEqual([r(0, 3)]);
  });

  test('overlapping ranges merge: 0-4 + 3-6 → 0-6, then + 2-8 → 0-8', () => {
    const a = build([0, 4], [3, 6]);
    expect(a).toEqual([r(0, 6)]);
    expect(addRange(a, r(2, 8))).toEqual([r(0, 8)]);
  });

  test('gaps and out-of-order segments (§11.1/§11.2): 0-4, 9-11, then 5-8 completes 12 bytes', () => {
    const a = build([0, 4]);
    expect(formatRangeList(a, 12, 256)).toBe('0-4/12');
    const b = addRange(a, r(9, 11));
    expect(b).toEqual([r(0, 4), r(9, 11)]);
    expect(formatRangeList(b, 12, 256)).toBe('0-4/12,9-11/12');
    expect(isComplete(b, 12)).toBe(false);
    const c = addRange(b, r(5, 8));
    expect(c).toEqual([r(0, 11)]);
    expect(isComplete(c, 12)).toBe(true);
  });

  test('single-byte ranges: 0-0 twice, 2-2, 1-1 of 3 completes', () => {
    let s = build([0, 0]);
    s = addRange(s, r(0, 0));
    expect(s).toEqual([r(0, 0)]);
    s = addRange(s, r(2, 2));
    expect(s).toEqual([r(0, 0), r(2, 2)]);
    expect(isComplete(s, 3)).toBe(false);
    s = addRange(s, r(1, 1));
    expect(s).toEqual([r(0, 2)]);
    expect(isComplete(s, 3)).toBe(true);
  });

  test('a single full segment completes at once', () => {
    expect(isComplete(build([0, 19999]), 20000)).toBe(true);
  });

  test('a range bridging several ranges swallows them all', () => {
    const s = build([0, 1], [4, 5], [8, 9], [12, 13], [20, 21]);
    expect(addRange(s, r(3, 12))).toEqual([r(0, 1), r(3, 13), r(20, 21)]);
    expect(addRange(s, r(2, 19))).toEqual([r(0, 21)]);
  });

  test('insertion before, between and after, keeping order', () => {
    const s = build([10, 12], [20, 22]);
    expect(addRange(s, r(0, 5))).toEqual([r(0, 5), r(10, 12), r(20, 22)]);
    expect(addRange(s, r(15, 17))).toEqual([r(10, 12), r(15, 17), r(20, 22)]);
    expect(addRange(s, r(30, 31))).toEqual([r(10, 12), r(20, 22), r(30, 31)]);
    expect(addRange(s, r(13, 19))).toEqual([r(10, 22)]);
    expect(addRange(s, r(11, 11))).toEqual(s);
  });

  test('does not modify its input and shares no objects with it', () => {
    const s = build([0, 1], [5, 6]);
    const before = JSON.stringify(s);
    const out = addRange(s, r(10, 11));
    expect(JSON.stringify(s)).toBe(before);
    out[0]!.end = 99;
    expect(s[0]!.end).toBe(1);
  });

  test('huge offsets up to 2^53-1', () => {
    const M = Number.MAX_SAFE_INTEGER;
    expect(build([M - 1, M - 1], [M, M])).toEqual([r(M - 1, M)]);
  });

  test.each<[number, number]>([
    [-1, 3],
    [5, 4],
    [0.5, 2],
    [0, Number.MAX_SAFE_INTEGER + 1],
    [NaN, 1],
  ])('rejects the invalid range %d-%d', (s, e) => {
    expect(() => addRange([], r(s, e))).toThrow(RangeError);
    expect(() => intersect([], r(s, e))).toThrow(RangeError);
    expect(() => subtract(r(s, e), [])).toThrow(RangeError);
  });
});

describe('isComplete', () => {
  test.each<[ByteRange[], number, boolean]>([
    [[r(0, 11)], 12, true],
    [[r(0, 10)], 12, false],
    [[r(1, 11)], 12, false],
    [[r(0, 12)], 12, false],
    [[r(0, 4), r(6, 11)], 12, false],
    [[], 12, false],
    [[], 0, false],
    [[r(0, 0)], 1, true],
  ])('%j of %d → %s', (set, total, expected) => {
    expect(isComplete(set, total)).toBe(expected);
  });
});

describe('coveredBytes / overlaps / intersect / subtract', () => {
  test('coveredBytes', () => {
    expect(coveredBytes([])).toBe(0);
    expect(coveredBytes([r(0, 4), r(9, 11)])).toBe(8);
    expect(coveredBytes([r(7, 7)])).toBe(1);
  });

  test('overlaps: sharing a byte counts, touching does not', () => {
    expect(overlaps(r(0, 4), r(4, 6))).toBe(true);
    expect(overlaps(r(0, 4), r(5, 6))).toBe(false);
    expect(overlaps(r(5, 6), r(0, 4))).toBe(false);
    expect(overlaps(r(0, 10), r(3, 3))).toBe(true);
    expect(overlaps(r(3, 3), r(0, 10))).toBe(true);
    expect(overlaps(r(2, 2), r(2, 2))).toBe(true);
  });

  const set = [r(0, 4), r(9, 11), r(20, 29)];

  test('intersect: the parts already received', () => {
    expect(intersect(set, r(3, 10))).toEqual([r(3, 4), r(9, 10)]);
    expect(intersect(set, r(5, 8))).toEqual([]);
    expect(intersect(set, r(0, 100))).toEqual(set);
    expect(intersect(set, r(22, 23))).toEqual([r(22, 23)]);
    expect(intersect([], r(0, 3))).toEqual([]);
  });

  test('subtract: the parts still missing', () => {
    expect(subtract(r(3, 10), set)).toEqual([r(5, 8)]);
    expect(subtract(r(0, 30), set)).toEqual([r(5, 8), r(12, 19), r(30, 30)]);
    expect(subtract(r(20, 29), set)).toEqual([]);
    expect(subtract(r(5, 8), set)).toEqual([r(5, 8)]);
    expect(subtract(r(0, 3), [])).toEqual([r(0, 3)]);
  });
});

describe('formatRangeList (the 201 Range header and body, §3.10)', () => {
  test('module format: S-E/T joined by ",", no spaces, no newline', () => {
    expect(formatRangeList([r(0, 4), r(9, 11)], 12, 256)).toBe('0-4/12,9-11/12');
    expect(formatRangeList([r(0, 4)], 12, 256)).toBe('0-4/12');
    expect(formatRangeList([], 12, 256)).toBe('');
  });

  test('Q7 truncation: entries are appended while the text is shorter than the limit', () => {
    const set = [r(0, 1), r(3, 4), r(6, 7)];
    // "0-1/100" (7) < 10 → ",3-4/100" is appended in full (15) → stop
    expect(formatRangeList(set, 100, 10)).toBe('0-1/100,3-4/100');
    expect(formatRangeList(set, 100, 7)).toBe('0-1/100');
    expect(formatRangeList(set, 100, 8)).toBe('0-1/100,3-4/100');
    expect(formatRangeList(set, 100, 15)).toBe('0-1/100,3-4/100'); // 15 is not shorter than 15
    expect(formatRangeList(set, 100, 15)).not.toBe(formatRangeList(set, 100));
    expect(formatRangeList(set, 100, 16)).toBe('0-1/100,3-4/100,6-7/100');
    expect(formatRangeList(set, 100, 1)).toBe('0-1/100');
  });

  test('Q7 truncation with the default 256: the crossing entry is written in full', () => {
    // 50 ranges k*10 .. k*10+1 of 1000: "0-1/1000" (8), 9 × ",k0-k1/1000" (11), then 13 each.
    const set = Array.from({ length: 50 }, (_, k) => r(k * 10, k * 10 + 1));
    const out = formatRangeList(set, 1000, 256);
    expect(out.length).toBe(263); // 250 before the last entry, so it is appended
    expect(out.endsWith(',210-211/1000')).toBe(true);
    expect(out.split(',').length).toBe(22);
    expect(formatRangeList(set, 1000).startsWith(out + ',')).toBe(true);
  });

  test('a zero-size buffer gives no text at all', () => {
    expect(formatRangeList([r(0, 4)], 12, 0)).toBe('');
  });

  test('formatRangeList without a limit never truncates', () => {
    const set = Array.from({ length: 500 }, (_, k) => r(k * 3, k * 3 + 1));
    const full = formatRangeList(set, 1500);
    expect(full.split(',')).toHaveLength(500);
    expect(full.split(',')[499]).toBe('1497-1498/1500');
  });
});

describe('parseRangeList', () => {
  test('module format', () => {
    expect(parseRangeList('0-4/12,9-10/12')).toEqual({ ranges: [r(0, 4), r(9, 10)], total: 12 });
    expect(parseRangeList('0-4/12')).toEqual({ ranges: [r(0, 4)], total: 12 });
  });

  test('compact client form', () => {
    expect(parseRangeList('0-5,9-15/24')).toEqual({ ranges: [r(0, 5), r(9, 15)], total: 24 });
    expect(parseRangeList('0-1,3-4/24,9-15/24')).toEqual({ ranges: [r(0, 1), r(3, 4), r(9, 15)], total: 24 });
  });

  test('leading zeros and whitespace around entries are tolerated', () => {
    expect(parseRangeList(' 00-04/012 , 9-10/12 ')).toEqual({ ranges: [r(0, 4), r(9, 10)], total: 12 });
  });

  test('unsorted, overlapping and adjacent entries are normalised', () => {
    expect(parseRangeList('9-10/12,0-4/12')).toEqual({ ranges: [r(0, 4), r(9, 10)], total: 12 });
    expect(parseRangeList('0-4/12,3-6/12,7-7/12')).toEqual({ ranges: [r(0, 7)], total: 12 });
  });

  test('an empty list (a 201 cut to nothing, Q7) and lists without a total on every entry (the client shares this parser)', () => {
    expect(parseRangeList('')).toEqual({ ranges: [], total: undefined });
    expect(parseRangeList('0-5,9-15')).toEqual({ ranges: [r(0, 5), r(9, 15)], total: undefined });
    expect(parseRangeList('0-5/24,9-15')).toEqual({ ranges: [r(0, 5), r(9, 15)], total: 24 });
  });

  test.each([
    ',',
    '0-4/12,9-10/13', // totals differ
    '5-4/10', // end before start
    '0-10/10', // end not below total
    '0-0/0', // total 0
    'a-b/c',
    '0-1/10,,3-4/10',
    '0-1/10,',
    '-1/10',
    '0-/10',
    '0-1/',
    '0-1/10;3-4/10',
    'bytes 0-1/10',
    '0-1/9007199254740992', // above 2^53-1
    '0-1/*',
  ])('rejects %j', (text) => {
    expect(parseRangeList(text)).toBeNull();
  });
});

// ---- property tests --------------------------------------------------------------------------

const N = 48; // positions 0..N-1 for the bitmap model

const smallRange = fc
  .tuple(fc.integer({ min: 0, max: N - 1 }), fc.integer({ min: 0, max: N - 1 }))
  .map(([a, b]) => r(Math.min(a, b), Math.max(a, b)));

/** A bitmap model: true where a byte was received. */
function toBitmap(ranges: readonly ByteRange[]): boolean[] {
  const bits = new Array<boolean>(N).fill(false);
  for (const x of ranges) for (let i = x.start; i <= x.end; i++) bits[i] = true;
  return bits;
}

/** The maximal runs of set bits, computed independently of range-set.ts. */
function runs(bits: readonly boolean[]): ByteRange[] {
  const out: ByteRange[] = [];
  let i = 0;
  while (i < bits.length) {
    if (!bits[i]) {
      i++;
      continue;
    }
    const start = i;
    while (i < bits.length && bits[i]) i++;
    out.push(r(start, i - 1));
  }
  return out;
}

function checkInvariant(set: readonly ByteRange[]): void {
  for (let k = 0; k < set.length; k++) {
    expect(set[k]!.start).toBeLessThanOrEqual(set[k]!.end);
    if (k > 0) expect(set[k - 1]!.end + 1).toBeLessThan(set[k]!.start);
  }
}

const arbitrarySet = fc.array(smallRange, { maxLength: 12 }).map((rs) => runs(toBitmap(rs)));

describe('properties', () => {
  test('addRange keeps the invariant and equals the bitmap model', () => {
    fc.assert(
      fc.property(fc.array(smallRange, { maxLength: 25 }), (ranges) => {
        let set: ByteRange[] = [];
        for (let k = 0; k < ranges.length; k++) {
          set = addRange(set, ranges[k]!);
          checkInvariant(set);
          expect(set).toEqual(runs(toBitmap(ranges.slice(0, k + 1))));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('coveredBytes and isComplete agree with the bitmap model', () => {
    fc.assert(
      fc.property(fc.array(smallRange, { maxLength: 15 }), fc.integer({ min: 1, max: N }), (ranges, total) => {
        const set = ranges.reduce<ByteRange[]>((s, x) => addRange(s, x), []);
        const bits = toBitmap(ranges);
        expect(coveredBytes(set)).toBe(bits.filter(Boolean).length);
        const onlyPrefix = bits.every((b, i) => b === i < total);
        expect(isComplete(set, total)).toBe(onlyPrefix);
      }),
    );
  });

  test('intersect and subtract agree with the bitmap model and partition the range', () => {
    fc.assert(
      fc.property(arbitrarySet, smallRange, (set, x) => {
        const bits = toBitmap(set);
        const inR = (i: number): boolean => i >= x.start && i <= x.end;
        const both = runs(bits.map((b, i) => b && inR(i)));
        const missing = runs(bits.map((b, i) => !b && inR(i)));
        expect(intersect(set, x)).toEqual(both);
        expect(subtract(x, set)).toEqual(missing);
        expect(coveredBytes(intersect(set, x)) + coveredBytes(subtract(x, set))).toBe(x.end - x.start + 1);
        expect(intersect(set, x).length > 0).toBe(set.some((y) => overlaps(x, y)));
      }),
      { numRuns: 500 },
    );
  });

  test('overlaps is symmetric and matches the bitmap model', () => {
    fc.assert(
      fc.property(smallRange, smallRange, (a, b) => {
        const model = toBitmap([a]).some((v, i) => v && toBitmap([b])[i]);
        expect(overlaps(a, b)).toBe(model);
        expect(overlaps(b, a)).toBe(model);
      }),
    );
  });

  const setWithTotal = fc
    .array(fc.tuple(fc.nat(1000), fc.nat(1000)), { maxLength: 30 })
    .chain((pairs) => {
      const set = pairs.reduce<ByteRange[]>((s, [a, b]) => addRange(s, r(Math.min(a, b), Math.max(a, b))), []);
      const min = set.length ? set[set.length - 1]!.end + 1 : 1;
      return fc.integer({ min, max: min + 1_000_000 }).map((total) => ({ set, total }));
    });

  test('formatRangeList / parseRangeList round-trip', () => {
    fc.assert(
      fc.property(setWithTotal, ({ set, total }) => {
        const text = formatRangeList(set, total);
        if (set.length === 0) {
          expect(text).toBe('');
          expect(parseRangeList(text)).toEqual({ ranges: [], total: undefined });
          return;
        }
        expect(text).toMatch(/^\d+-\d+\/\d+(,\d+-\d+\/\d+)*$/);
        expect(parseRangeList(text)).toEqual({ ranges: set, total });
        // the compact form: only the last entry carries the total
        const compact = set.map((x) => `${x.start}-${x.end}`).join(',') + `/${total}`;
        expect(parseRangeList(compact)).toEqual({ ranges: set, total });
      }),
      { numRuns: 500 },
    );
  });

  test('formatRangeList equals the full list when it is shorter than the limit', () => {
    fc.assert(
      fc.property(setWithTotal, fc.nat(400), ({ set, total }, limit) => {
        const full = formatRangeList(set, total);
        const out = formatRangeList(set, total, limit);
        if (full.length <= limit) {
          expect(out).toBe(full);
          if (out !== '') expect(parseRangeList(out)).toEqual({ ranges: set, total });
        }
      }),
    );
  });

  test('truncation: a prefix of whole entries; all but its last entry is shorter than the limit', () => {
    fc.assert(
      fc.property(setWithTotal, fc.nat(400), ({ set, total }, limit) => {
        const fullEntries = formatRangeList(set, total).split(',').filter((e) => e !== '');
        const out = formatRangeList(set, total, limit);
        const entries = out === '' ? [] : out.split(',');
        expect(entries).toEqual(fullEntries.slice(0, entries.length));
        if (entries.length > 0) {
          expect(entries.slice(0, -1).join(',').length).toBeLessThan(limit);
        }
        if (entries.length < fullEntries.length) {
          // something was dropped only because the limit was reached
          expect(out.length).toBeGreaterThanOrEqual(limit);
        }
        if (out !== '') {
          const parsed = parseRangeList(out);
          expect(parsed?.total).toBe(total);
          expect(parsed?.ranges).toEqual(set.slice(0, entries.length));
        }
      }),
      { numRuns: 500 },
    );
  });
});
