import * as fc from 'fast-check';
import { DEFAULT_SESSION_ID_MAX_LENGTH, parseSessionId } from '../../src/protocol/session-id';

const MAX = DEFAULT_SESSION_ID_MAX_LENGTH;

describe('parseSessionId: the module character set (§3.3)', () => {
  test.each(['1111215056', 'sess1', 'xy12', 'a', 'A', '0', '_', '-', 'abc_', 'abc-', 'mixAB', 'mixab', 'a-B_c-9'])(
    'accepts %j',
    (id) => {
      expect(parseSessionId(id, MAX)).toEqual({ ok: true, id });
    },
  );

  test.each(['a.b', '../etc', '../../etc/passwd', 'abc def', 'a/b', 'a\\b', 'a+b', 'a%2e', 'a:b', 'caf\xe9', 'a\x00b', 'a\r\nb', 'a\tb'])(
    'rejects %j',
    (id) => {
      expect(parseSessionId(id, MAX)).toEqual({ ok: false, reason: 'Session-ID may only contain A-Z a-z 0-9 _ -' });
    },
  );

  test('ids are case-sensitive (returned unchanged)', () => {
    expect(parseSessionId('MixAB', MAX)).toEqual({ ok: true, id: 'MixAB' });
  });

  test('D10: an empty id is rejected with a reason (module: connection closed)', () => {
    expect(parseSessionId('', MAX)).toEqual({ ok: false, reason: 'empty Session-ID' });
  });
});

describe('D10: length limit and whitespace', () => {
  test('D10: 200 characters are accepted, 201 rejected (default limit)', () => {
    expect(MAX).toBe(200);
    expect(parseSessionId('a'.repeat(200), MAX)).toEqual({ ok: true, id: 'a'.repeat(200) });
    expect(parseSessionId('a'.repeat(201), MAX)).toEqual({ ok: false, reason: 'Session-ID longer than 200 characters' });
    expect(parseSessionId('x'.repeat(300), MAX)).toEqual({ ok: false, reason: 'Session-ID longer than 200 characters' });
  });

  test('D10: the limit is configurable', () => {
    expect(parseSessionId('abcd', 4)).toEqual({ ok: true, id: 'abcd' });
    expect(parseSessionId('abcde', 4)).toEqual({ ok: false, reason: 'Session-ID longer than 4 characters' });
    expect(parseSessionId('a'.repeat(249), 249).ok).toBe(true);
  });

  test('D10: surrounding spaces and tabs are trimmed', () => {
    expect(parseSessionId('   ws1   ', MAX)).toEqual({ ok: true, id: 'ws1' });
    expect(parseSessionId('\tws1 \t', MAX)).toEqual({ ok: true, id: 'ws1' });
    expect(parseSessionId(' ' + 'a'.repeat(200) + ' ', MAX)).toEqual({ ok: true, id: 'a'.repeat(200) });
  });

  test('D10: whitespace only counts as empty', () => {
    expect(parseSessionId('  \t ', MAX)).toEqual({ ok: false, reason: 'empty Session-ID' });
  });

  test('D10: only spaces and tabs are trimmed, not CR/LF/other whitespace', () => {
    expect(parseSessionId('abc\n', MAX).ok).toBe(false);
    expect(parseSessionId('\rabc', MAX).ok).toBe(false);
    expect(parseSessionId('\u00a0abc', MAX).ok).toBe(false);
  });
});

describe('properties', () => {
  const idChar = fc.constantFrom(...'ABCXYZabcxyz0189_-'.split(''));
  const ws = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 4 });

  test('valid ids with any surrounding spaces/tabs are accepted and trimmed', () => {
    fc.assert(
      fc.property(fc.string({ unit: idChar, minLength: 1, maxLength: 60 }), ws, ws, (id, a, b) => {
        expect(parseSessionId(a + id + b, 60)).toEqual({ ok: true, id });
        if (id.length > 1) expect(parseSessionId(a + id + b, id.length - 1).ok).toBe(false);
      }),
    );
  });

  test('a byte outside the set anywhere inside the id is rejected', () => {
    const bad = fc
      .integer({ min: 0, max: 255 })
      .map((c) => String.fromCharCode(c))
      .filter((c) => !/[A-Za-z0-9_-]/.test(c));
    fc.assert(
      fc.property(fc.string({ unit: idChar, minLength: 1, maxLength: 20 }), fc.string({ unit: idChar, minLength: 1, maxLength: 20 }), bad, (x, y, c) => {
        expect(parseSessionId(x + c + y, MAX)).toEqual({ ok: false, reason: 'Session-ID may only contain A-Z a-z 0-9 _ -' });
      }),
    );
  });
});
