import { ValueError } from '../../src/config/errors';
import { formatSize, formatTime, parseSize, parseTime } from '../../src/config/units';

describe('parseSize', () => {
  test.each([
    ['0', 0],
    ['1024', 1024],
    ['007', 7],
    ['10k', 10 * 1024],
    ['10K', 10 * 1024],
    ['8m', 8 * 1024 * 1024],
    ['8M', 8 * 1024 * 1024],
    ['1g', 1024 * 1024 * 1024],
    ['3G', 3 * 1024 * 1024 * 1024],
    ['100k', 102400],
  ])('%s → %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(['', 'k', '-1', '1.5m', '10 k', ' 10', '10kb', '1t', '0x10', '1e3', 'ten', '10mm'])('refuses %j', (text) => {
    expect(() => parseSize(text)).toThrow(ValueError);
    expect(() => parseSize(text)).toThrow(`invalid size "${text}"`);
  });

  test('refuses sizes beyond what can be counted exactly', () => {
    expect(() => parseSize('99999999999999999999')).toThrow(/too large/);
    expect(() => parseSize('9999999999g')).toThrow(/too large/);
  });
});

describe('formatSize', () => {
  test.each([
    [0, '0'],
    [1000, '1000'],
    [1024, '1k'],
    [1536, '1536'],
    [2 * 1024 * 1024, '2m'],
    [1024 ** 3, '1g'],
  ])('%d → %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});

describe('parseTime', () => {
  test.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['30', 30_000],
    ['0', 0],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 2 * 86_400_000],
    ['1w', 7 * 86_400_000],
    ['1h30m', 5_400_000],
    ['1m30s', 90_000],
    ['1m30', 90_000],
    ['1d2h3m4s5ms', 86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4_000 + 5],
    ['1h 30m', 5_400_000],
    ['24h', 86_400_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseTime(text)).toBe(ms);
  });

  test.each([
    '',
    's',
    'ms',
    '1x',
    '-1s',
    '1.5s',
    '30m1h', // units must decrease
    '1s1s', // each unit once
    '1m1m',
    '1s5', // a bare number only after units larger than a second
    '500ms3',
    '1y', // years and months are not allowed for millisecond times (as in nginx)
    '1M',
    ' 1s',
    '1 2',
  ])('refuses %j', (text) => {
    expect(() => parseTime(text)).toThrow(ValueError);
    expect(() => parseTime(text)).toThrow(`invalid time "${text}"`);
  });
});

describe('formatTime', () => {
  test.each([
    [0, '0s'],
    [500, '500ms'],
    [90_000, '1m30s'],
    [5_400_000, '1h30m'],
    [86_400_000, '1d'],
    [8 * 86_400_000 + 1, '1w1d1ms'],
  ])('%d → %s', (ms, text) => {
    expect(formatTime(ms)).toBe(text);
  });
});
