import { ConfigError } from '../../src/config/errors';
import { parseStatements, tokenize, type Statement, type Token } from '../../src/config/lexer';
import { configErrorOf } from './helpers';

const FILE = 'lexer.conf';

/** Tokens as compact strings: words as their value, punctuation as itself. */
function words(text: string): Array<string> {
  return tokenize(text, FILE).map((t) => (t.kind === 'word' ? t.value : t.kind));
}

function lexError(text: string): ConfigError {
  return configErrorOf(() => tokenize(text, FILE));
}

/** Statement tree without line numbers: [name, args, block]. */
type Shape = [string, string[], Shape[] | null];
function shape(statements: Statement[]): Shape[] {
  return statements.map((s) => [s.name, s.args.map((a) => a.value), s.block && shape(s.block)]);
}

describe('tokenize', () => {
  test('splits words and punctuation and records each line', () => {
    const tokens = tokenize('listen 80;\nlocation /x {\n  a  b\t c;\n}\n', FILE);
    const compact = tokens.map((t: Token) => [t.kind === 'word' ? t.value : t.kind, t.line]);
    expect(compact).toEqual([
      ['listen', 1],
      ['80', 1],
      [';', 1],
      ['location', 2],
      ['/x', 2],
      ['{', 2],
      ['a', 3],
      ['b', 3],
      ['c', 3],
      [';', 3],
      ['}', 4],
    ]);
  });

  test('punctuation ends a word without whitespace', () => {
    expect(words('a b;c{d;}')).toEqual(['a', 'b', ';', 'c', '{', 'd', ';', '}']);
  });

  test('double- and single-quoted strings keep spaces and punctuation', () => {
    expect(words(`x "a; {b} #c" 'd "e" f';`)).toEqual(['x', 'a; {b} #c', 'd "e" f', ';']);
  });

  test('quoted words are marked as quoted, an empty quoted string is an empty word', () => {
    const tokens = tokenize(`a "" 'b';`, FILE).filter((t) => t.kind === 'word');
    expect(tokens.map((t) => t.kind === 'word' && [t.value, t.quoted])).toEqual([
      ['a', false],
      ['', true],
      ['b', true],
    ]);
  });

  test('backslash escapes in quotes: \\" \\\' \\\\ and \\n \\r \\t', () => {
    const [value] = words(String.raw`"q\"x \'y\' back\\slash l1\nl2\r\tend"`);
    expect(value).toBe('q"x \'y\' back\\slash l1\nl2\r\tend');
    expect(words(String.raw`'it\'s'`)).toEqual(["it's"]);
  });

  test('other backslash sequences are kept as written (regular expressions survive)', () => {
    expect(words(String.raw`"^file\d+\.txt$"`)).toEqual([String.raw`^file\d+\.txt$`]);
    expect(words(String.raw`^a\.b$`)).toEqual([String.raw`^a\.b$`]);
  });

  test('unquoted words are unescaped as nginx does', () => {
    expect(words(String.raw`a\"b c\\d`)).toEqual(['a"b', 'c\\d']);
    // A backslash makes the next character part of the word, so `\;` does not end it.
    expect(words(String.raw`a\;b;`)).toEqual([String.raw`a\;b`, ';']);
  });

  test('# starts a comment to the end of the line, outside quotes and at the start of a word', () => {
    expect(words('a b; # comment ; { }\nc;')).toEqual(['a', 'b', ';', 'c', ';']);
    expect(words('a "#not" b#not;#c\nd;')).toEqual(['a', '#not', 'b#not', ';', 'd', ';']);
    expect(words('# only a comment')).toEqual([]);
  });

  test('${name} inside a word does not open a block', () => {
    expect(words('upload_set_form_field ${upload_field_name}_x $upload_file_name;')).toEqual([
      'upload_set_form_field',
      '${upload_field_name}_x',
      '$upload_file_name',
      ';',
    ]);
    expect(words('a ${b} {')).toEqual(['a', '${b}', '{']);
  });

  test('a "}" inside a word belongs to the word, as in nginx', () => {
    expect(words('a b}')).toEqual(['a', 'b}']);
  });

  test('a quoted string may span lines; later tokens keep the right line', () => {
    const tokens = tokenize('a "x\ny\nz" b;\nc;', FILE);
    expect(tokens.map((t) => t.line)).toEqual([1, 1, 3, 3, 4, 4]);
    expect(tokens[1]).toMatchObject({ kind: 'word', value: 'x\ny\nz' });
  });

  test('CRLF line endings', () => {
    const tokens = tokenize('a b;\r\nc d;\r\n', FILE);
    expect(tokens.map((t) => (t.kind === 'word' ? t.value : t.kind))).toEqual(['a', 'b', ';', 'c', 'd', ';']);
    expect(tokens.map((t) => t.line)).toEqual([1, 1, 1, 2, 2, 2]);
  });

  test('an unterminated quote is an error at the line where it opened', () => {
    const err = lexError('a b;\nc "never\nclosed;\n');
    expect(err.line).toBe(2);
    expect(err.file).toBe(FILE);
    expect(err.message).toMatch(/^lexer\.conf:2: .*unterminated/);
    expect(lexError("x 'y").line).toBe(1);
    // An escaped quote does not close the string.
    expect(lexError('x "y\\"').reason).toMatch(/unterminated/);
  });

  test('a closing quote must be followed by whitespace, ";" or "{"', () => {
    const err = lexError('a "b"c;');
    expect(err.line).toBe(1);
    expect(err.reason).toContain('unexpected "c"');
    expect(words('a "b";')).toEqual(['a', 'b', ';']);
    expect(words('a "b"{')).toEqual(['a', 'b', '{']);
  });
});

describe('parseStatements', () => {
  test('builds the directive tree', () => {
    const tree = parseStatements('listen 80;\nhttp {\n server {\n  location = /x { a 1; b; }\n }\n}\n', FILE);
    expect(shape(tree)).toEqual([
      ['listen', ['80'], null],
      ['http', [], [['server', [], [['location', ['=', '/x'], [['a', ['1'], null], ['b', [], null]]]]]]],
    ]);
    expect(tree[1].line).toBe(2);
    expect(tree[1].block?.[0].block?.[0].line).toBe(4);
  });

  test('a directive spanning lines carries the line of its name', () => {
    const [statement] = parseStatements('\n\nupload_set_form_field\n  name\n  value;', FILE);
    expect(statement.line).toBe(3);
    expect(statement.args.map((a) => a.line)).toEqual([4, 5]);
  });

  test('an unclosed block is an error at the line of its opening', () => {
    const err = configErrorOf(() => parseStatements('listen 80;\nlocation /x {\n  a b;\n', FILE));
    expect(err.line).toBe(2);
    expect(err.reason).toMatch(/unexpected end of file, expecting "}"/);
    expect(err.reason).toContain('"location"');
  });

  test('an unexpected "}" is an error at its line', () => {
    const err = configErrorOf(() => parseStatements('a b;\n}\n', FILE));
    expect(err.line).toBe(2);
    expect(err.reason).toBe('unexpected "}"');
  });

  test('a directive without ";" is an error at its line', () => {
    expect(configErrorOf(() => parseStatements('a b;\nlisten 80\n', FILE))).toMatchObject({
      line: 2,
      reason: 'directive "listen" is not terminated by ";"',
    });
    expect(configErrorOf(() => parseStatements('location /x {\n  upload_pass @a\n}\n', FILE))).toMatchObject({ line: 2 });
  });

  test('";" or "{" without a directive name is an error', () => {
    expect(configErrorOf(() => parseStatements('a;\n;', FILE))).toMatchObject({ line: 2, reason: 'unexpected ";"' });
    expect(configErrorOf(() => parseStatements('{ a; }', FILE))).toMatchObject({ line: 1, reason: 'unexpected "{"' });
  });

  test('empty input and comments only give no statements', () => {
    expect(parseStatements('', FILE)).toEqual([]);
    expect(parseStatements('  # nothing\n\n', FILE)).toEqual([]);
  });
});
