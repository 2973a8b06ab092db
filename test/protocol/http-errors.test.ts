import { STATUS_TEXT, HttpError } from '../../src/protocol/http-errors';
import { quoteValue } from '../../src/protocol/quote';

describe('STATUS_TEXT', () => {
  test('nginx reason phrases for the statuses the gateway generates', () => {
    expect(STATUS_TEXT).toEqual({
      400: 'Bad Request',
      405: 'Not Allowed',
      408: 'Request Time-out',
      409: 'Conflict',
      411: 'Length Required',
      413: 'Request Entity Too Large',
      415: 'Unsupported Media Type',
      416: 'Requested Range Not Satisfiable',
      431: 'Request Header Fields Too Large',
      460: 'Checksum Mismatch',
      500: 'Internal Server Error',
      501: 'Not Implemented',
      502: 'Bad Gateway',
      503: 'Service Temporarily Unavailable',
      504: 'Gateway Time-out',
      505: 'HTTP Version Not Supported',
      507: 'Insufficient Storage',
    });
  });
});

describe('HttpError', () => {
  test('carries status, reason and headers', () => {
    const e = new HttpError(503, 'segment overlaps one in flight', { 'Retry-After': '1' });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(HttpError);
    expect(e.name).toBe('HttpError');
    expect(e.status).toBe(503);
    expect(e.reason).toBe('segment overlaps one in flight');
    expect(e.message).toBe('segment overlaps one in flight');
    expect(e.headers).toEqual({ 'Retry-After': '1' });
    expect(e.expose).toBe(true);
  });

  test('headers default to none and are copied', () => {
    expect(new HttpError(400, 'x').headers).toEqual({});
    const h = { 'Retry-After': '2' };
    const e = new HttpError(503, 'x', h);
    h['Retry-After'] = '9';
    expect(e.headers['Retry-After']).toBe('2');
  });

  test('the reason is always one line', () => {
    const e = new HttpError(400, 'first\r\nsecond\nthird\x00');
    expect(e.reason).toBe('first second third');
    expect(e.reason).not.toMatch(/[\r\n]/);
  });

  test('an empty reason falls back to the status text', () => {
    expect(new HttpError(416, '').reason).toBe('Requested Range Not Satisfiable');
    expect(new HttpError(460, ' \n ').reason).toBe('Checksum Mismatch');
  });

  test.each([200, 399, 600, 400.5, NaN])('rejects status %d', (status) => {
    expect(() => new HttpError(status, 'x')).toThrow(RangeError);
  });
});

describe('quoteValue', () => {
  test('printable ASCII kept, quotes and backslashes escaped, other bytes as \\xHH', () => {
    expect(quoteValue('bytes 4-0/10')).toBe('"bytes 4-0/10"');
    expect(quoteValue('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quoteValue('\r\n\x00\xff\x7f')).toBe('"\\x0d\\x0a\\x00\\xff\\x7f"');
  });

  test('long values are cut', () => {
    expect(quoteValue('x'.repeat(100))).toBe(`"${'x'.repeat(80)}"...`);
    expect(quoteValue('abcdef', 3)).toBe('"abc"...');
    expect(quoteValue('abc', 3)).toBe('"abc"');
  });
});
