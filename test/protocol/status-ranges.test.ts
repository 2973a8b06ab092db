import { statusInRanges } from '../../src/protocol/status-ranges';

describe('statusInRanges (upload_cleanup, §6)', () => {
  // upload_cleanup 400 404 499 500-505
  const cleanup: ReadonlyArray<readonly [number, number]> = [
    [400, 400],
    [404, 404],
    [499, 499],
    [500, 505],
  ];

  test.each([400, 404, 499, 500, 502, 505])('%d is in the list', (s) => {
    expect(statusInRanges(s, cleanup)).toBe(true);
  });

  test.each([200, 201, 399, 401, 403, 498, 506, 599])('%d is not in the list', (s) => {
    expect(statusInRanges(s, cleanup)).toBe(false);
  });

  test('an empty list matches nothing', () => {
    expect(statusInRanges(500, [])).toBe(false);
  });

  test('201 in the list (cleanup after every non-final segment)', () => {
    expect(statusInRanges(201, [[201, 201]])).toBe(true);
  });

  test('range bounds are inclusive, overlapping ranges are fine', () => {
    const r: Array<[number, number]> = [
      [200, 299],
      [250, 260],
    ];
    expect(statusInRanges(200, r)).toBe(true);
    expect(statusInRanges(299, r)).toBe(true);
    expect(statusInRanges(300, r)).toBe(false);
    expect(statusInRanges(199, r)).toBe(false);
  });
});
