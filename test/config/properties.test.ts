import fc from 'fast-check';
import { ConfigError } from '../../src/config/errors';
import { parseStatements, tokenize } from '../../src/config/lexer';
import { parseConfig } from '../../src/config/parse';
import { parseTemplate, renderTemplate } from '../../src/protocol/templates';
import { formatSize, formatTime, parseSize, parseTime } from '../../src/config/units';

/** Runs `fn` and fails unless it returns or throws a ConfigError. */
function onlyConfigErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    expect(err.message).toMatch(/^[^:]+:\d+: ./s);
  }
}

/** Characters that matter to the lexer, so random texts hit its states often. */
const configChar = fc.constantFrom(...' \t\r\n;{}#"\'\\$ab_/:0-9'.split(''));
const configText = fc.oneof(fc.string({ unit: configChar, maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 80 }));

describe('properties', () => {
  test('sizes: n with a unit is n times the unit', () => {
    const scale: Record<string, number> = { '': 1, k: 1024, K: 1024, m: 1024 ** 2, M: 1024 ** 2, g: 1024 ** 3, G: 1024 ** 3 };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 20 }), fc.constantFrom(...Object.keys(scale)), (n, unit) => {
        expect(parseSize(`${n}${unit}`)).toBe(n * scale[unit]);
      }),
    );
  });

  test('sizes round-trip through their nginx spelling', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (bytes) => {
        expect(parseSize(formatSize(bytes))).toBe(bytes);
      }),
    );
  });

  test('times round-trip through their nginx spelling', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (ms) => {
        expect(parseTime(formatTime(ms))).toBe(ms);
      }),
    );
  });

  test('a time is the sum of its parts', () => {
    const units: Array<[string, number]> = [
      ['w', 604_800_000],
      ['d', 86_400_000],
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1000],
      ['ms', 1],
    ];
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }), { minLength: 6, maxLength: 6 }), (counts) => {
        fc.pre(counts.some((c) => c !== undefined));
        const text = units.map(([unit], i) => (counts[i] === undefined ? '' : `${counts[i]}${unit}`)).join('');
        const expected = units.reduce((sum, [, scale], i) => sum + (counts[i] ?? 0) * scale, 0);
        expect(parseTime(text)).toBe(expected);
      }),
    );
  });

  test('the lexer and the statement parser only ever throw ConfigError', () => {
    fc.assert(
      fc.property(configText, (text) => {
        onlyConfigErrors(() => tokenize(text, 'random.conf'));
        onlyConfigErrors(() => parseStatements(text, 'random.conf'));
      }),
      { numRuns: 2000 },
    );
  });

  test('parseConfig only ever throws ConfigError', () => {
    const directive = fc.constantFrom(
      'listen',
      'location',
      'upload_pass',
      'proxy_pass',
      'upload_store',
      'upload_cleanup',
      'upload_set_form_field',
      'upload_resumable',
      'client_max_body_size',
      'server',
      'http',
      'internal',
    );
    const word = fc.oneof(fc.string({ unit: configChar, maxLength: 12 }), fc.constantFrom('on', '/x', '@b', 'http://b:1', '1k', '500-505', '$upload_file_name'));
    const statement = fc
      .tuple(directive, fc.array(word, { maxLength: 3 }), fc.constantFrom(';', ' { ', ' } ', ';\n'))
      .map(([name, args, end]) => `${name} ${args.join(' ')}${end}`);
    fc.assert(
      fc.property(fc.oneof(configText, fc.array(statement, { maxLength: 8 }).map((s) => s.join(''))), (text) => {
        onlyConfigErrors(() => parseConfig(text, 'random.conf', { baseDir: '/srv' }));
      }),
      { numRuns: 2000 },
    );
  });

  test('any string survives nginx quoting', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.constantFrom('"', "'"), (value, quote) => {
        const quoted = quote + value.replace(/[\\"']/g, '\\$&') + quote;
        const tokens = tokenize(`x ${quoted};`, 'q.conf');
        expect(tokens[1]).toMatchObject({ kind: 'word', value, quoted: true });
      }),
    );
  });

  test('templates: parsing finds the variables, rendering puts the values in their place', () => {
    const literal = fc.string({ unit: fc.constantFrom('a', '.', '-', ' ', '{', '}', '_', '/'), minLength: 1, maxLength: 5 });
    const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/);
    const part = fc.oneof(literal.map((text) => ({ literal: text })), name.map((variable) => ({ variable })));
    fc.assert(
      fc.property(fc.array(part, { maxLength: 6 }), (parts) => {
        const source = parts.map((p) => ('variable' in p ? `\${${p.variable}}` : p.literal)).join('');
        const template = parseTemplate(source);
        expect(template.parts.filter((p) => 'variable' in p)).toEqual(parts.filter((p) => 'variable' in p));
        const rendered = renderTemplate(template, (v) => `<${v}>`);
        expect(rendered).toBe(parts.map((p) => ('variable' in p ? `<${p.variable}>` : p.literal)).join(''));
      }),
    );
  });
});
