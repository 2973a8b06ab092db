import * as fc from 'fast-check';
import { hashedRelativePath } from '../../src/protocol/hash-path';

describe('hashedRelativePath (§3.7, nginx proxy_temp_path scheme)', () => {
  test.each<[string, number[], string]>([
    ['sess1', [1], '1/sess1'],
    ['xy12', [1, 1], '2/1/xy12'],
    ['1111215056', [1], '6/1111215056'], // §11.2
    ['0000000247', [1], '7/0000000247'], // §4.7
    ['0040576617', [1], '7/0040576617'], // §11.3
    ['0000000247', [1, 2], '7/24/0000000247'],
    ['0000000247', [2], '47/0000000247'],
    ['abcdef', [1, 2, 2], 'f/de/bc/abcdef'],
    ['abcdef', [2, 2, 2], 'ef/cd/ab/abcdef'],
    ['abc', [], 'abc'],
  ])('%s with levels %j → %s', (name, levels, expected) => {
    expect(hashedRelativePath(name, levels)).toBe(expected);
  });

  test('Q18: the state file name is hashed including ".state"', () => {
    expect(hashedRelativePath('1111215056.state', [1])).toBe('e/1111215056.state');
    expect(hashedRelativePath('1111215056.state', [2])).toBe('te/1111215056.state');
  });

  test('short names: a level takes what is left, empty levels are skipped', () => {
    // the module uses <store>/2/2 here (observed, after its path collapses)
    expect(hashedRelativePath('2', [1, 1])).toBe('2/2');
    expect(hashedRelativePath('a', [2])).toBe('a/a');
    expect(hashedRelativePath('ab', [1, 2])).toBe('b/a/ab');
    expect(hashedRelativePath('ab', [1, 1, 1])).toBe('b/a/ab');
    expect(hashedRelativePath('abc', [2, 2])).toBe('bc/a/abc');
  });

  test('invalid input throws', () => {
    expect(() => hashedRelativePath('', [1])).toThrow(RangeError);
    expect(() => hashedRelativePath('abc', [0])).toThrow(RangeError);
    expect(() => hashedRelativePath('abc', [1.5])).toThrow(RangeError);
    expect(() => hashedRelativePath('abc', [-1])).toThrow(RangeError);
  });

  test('property: the levels are consecutive slices of the name, read from its end', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'abcdefXYZ0123456789_-'.split('')), minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
        (name, levels) => {
          const parts = hashedRelativePath(name, levels).split('/');
          expect(parts[parts.length - 1]).toBe(name);
          const dirs = parts.slice(0, -1);
          const wanted = levels.reduce((a, b) => a + b, 0);
          // joined from the innermost level outwards they form the tail of the name
          expect(dirs.slice().reverse().join('')).toBe(name.slice(Math.max(0, name.length - wanted)));
          dirs.forEach((d, i) => {
            expect(d.length).toBeGreaterThan(0);
            expect(d.length).toBeLessThanOrEqual(levels[i]!);
          });
          if (name.length >= wanted) expect(dirs.map((d) => d.length)).toEqual(levels);
        },
      ),
    );
  });
});
