import { applyPartHeader, emptyPartHeaders, extractBoundary, FieldFilter, tameArrayName } from '../../src/protocol/multipart-headers';

describe('extractBoundary (§4.1, D1)', () => {
  test.each([
    ['multipart/form-data; boundary=XyZ', 'XyZ'],
    ['multipart/form-data;boundary=XyZ', 'XyZ'],
    ['multipart/form-data; charset=utf-8; boundary=B', 'B'],
    ['multipart/form-data; boundary="BOUNDARY"', 'BOUNDARY'],
    ['multipart/form-data; boundary=B; charset=utf-8', 'B'],
    ['multipart/form-data; boundary=B x', 'B'],
    ['multipart/form-data; boundary="a b"', '"a'],
    ['multipart/form-data; boundary="', '"'],
    ['multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW', '----WebKitFormBoundary7MA4YWxkTrZu0gW'],
    ['MULTIPART/FORM-DATA; boundary=b', 'b'],
  ])('%s → %s', (value, boundary) => {
    expect(extractBoundary(value)).toEqual({ ok: true, boundary });
  });

  test.each([
    'multipart/form-data',
    'multipart/form-data boundary=x',
    'multipart/form-data; BOUNDARY=x',
    'multipart/form-data; boundary=',
    'multipart/form-data; boundary=""',
    'multipart/form-data; boundary=;x',
  ])('%s → no boundary', (value) => {
    expect(extractBoundary(value).ok).toBe(false);
  });
});

describe('applyPartHeader (§4.3, D11, D12)', () => {
  const apply = (...lines: string[]) => {
    const h = emptyPartHeaders();
    for (const line of lines) {
      const r = applyPartHeader(h, line);
      if (!r.ok) return r.reason;
    }
    return h;
  };

  test('disposition and type, any case, with or without spaces', () => {
    expect(apply('content-disposition:form-data;name="lc"')).toEqual({ hasDisposition: true, fieldName: 'lc', fileName: '', contentType: '' });
    expect(apply('Content-Disposition: form-data; name="f"; filename="C:\\x\\y.txt"', 'CONTENT-TYPE:   text/plain; charset=utf-8')).toEqual({
      hasDisposition: true, fieldName: 'f', fileName: 'y.txt', contentType: 'text/plain; charset=utf-8',
    });
    expect(apply('Content-Disposition: attachment; name="a"')).toMatchObject({ fieldName: 'a' });
  });

  test('a later header overwrites; other headers are ignored', () => {
    expect(apply('Content-Disposition: form-data; name="a"', 'Content-Disposition: form-data; name="b"; filename="x"', 'X-Other: 1', 'no colon')).toMatchObject({ fieldName: 'b', fileName: 'x' });
  });

  test('malformed: inline, empty disposition, empty or blank Content-Type', () => {
    expect(typeof apply('Content-Disposition: inline; name="a"')).toBe('string');
    expect(typeof apply('Content-Disposition:')).toBe('string');
    expect(typeof apply('Content-Type:')).toBe('string');
    expect(typeof apply('Content-Type:    ')).toBe('string');
  });

  test('exact header names: a prefix is not the header', () => {
    expect(apply('Content-Dispositionfoo: inline', 'Content-Types: ')).toEqual(emptyPartHeaders());
  });
});

describe('tameArrayName (§4.4 step 3)', () => {
  test.each([
    ['files[]', 'files'],
    ['[]', '[]'],
    ['x[0]', 'x[0]'],
    ['y[]]', 'y[]]'],
    ['a[][]', 'a[]'],
  ])('%s → %s', (name, tamed) => {
    expect(tameArrayName(name)).toBe(tamed);
  });
});

describe('FieldFilter (D5: any JavaScript RegExp finds a match)', () => {
  test('the README example passes its fields (the PCRE2 build passed none)', () => {
    const f = new FieldFilter(['^submit$|^description$']);
    expect(f.passes('submit')).toBe(true);
    expect(f.passes('description')).toBe(true);
    expect(f.passes('submitx')).toBe(false);
    expect(f.passes('')).toBe(false);
  });
  test('unanchored search, several patterns, none configured passes nothing', () => {
    const f = new FieldFilter(['ub', '^z']);
    expect(f.passes('submit')).toBe(true);
    expect(f.passes('zeta')).toBe(true);
    expect(f.passes('other')).toBe(false);
    expect(new FieldFilter([]).passes('a')).toBe(false);
    expect(new FieldFilter(['(.*)']).passes('')).toBe(false);
  });
  test('global/sticky state never leaks between calls', () => {
    const f = new FieldFilter(['a']);
    expect([f.passes('a'), f.passes('a'), f.passes('a')]).toEqual([true, true, true]);
  });
});
