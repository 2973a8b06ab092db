/**
 * nginx configuration syntax: the tokenizer and the statement tree.
 *
 * Follows nginx's `ngx_conf_read_token`, so that a file nginx reads is read the same way:
 * - words end at whitespace, `;` or `{`; a `}` inside a word is part of it (as in nginx);
 * - `${` inside a word does not open a block (`"${upload_field_name}_x"` unquoted works);
 * - a quote opens a quoted string only at the start of a word, and a closing quote must be
 *   followed by whitespace, `;` or `{`;
 * - `#` starts a comment only at the start of a word (`a#b` is one word, as in nginx);
 * - a backslash makes the next character literal; in the value `\"`, `\'`, `\\` lose the
 *   backslash and `\n`, `\r`, `\t` become control characters. nginx does this for quoted and
 *   unquoted words alike, so do we; any other `\x` is kept as written (regex escapes survive).
 */
import { ConfigError } from './errors';

export interface Word {
  /** After unquoting and unescaping. */
  value: string;
  /** Written in quotes (so `""` is an explicitly empty value). */
  quoted: boolean;
  line: number;
}

export type Token = ({ kind: 'word' } & Word) | { kind: ';' | '{' | '}'; line: number };

/** A directive: `name args… ;` or `name args… { block }`. */
export interface Statement {
  name: string;
  args: Word[];
  /** Line of the directive name. */
  line: number;
  /** Contents of `{ … }`, or null for a simple directive ending with `;`. */
  block: Statement[] | null;
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

/** nginx's unescaping of a word's raw text (see the module comment). */
function unescape(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\' && i + 1 < raw.length) {
      const next = raw[i + 1];
      const replacement =
        next === '"' || next === "'" || next === '\\'
          ? next
          : next === 'n'
            ? '\n'
            : next === 'r'
              ? '\r'
              : next === 't'
                ? '\t'
                : null;
      if (replacement !== null) {
        out += replacement;
        i++;
        continue;
      }
    }
    out += c;
  }
  return out;
}

/** Splits configuration text into words and `;` `{` `}`, each with its line number. */
export function tokenize(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  const n = text.length;
  let line = 1;
  let i = 0;

  while (i < n) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      i++;
      continue;
    }
    if (isSpace(ch)) {
      i++;
      continue;
    }
    if (ch === ';' || ch === '{' || ch === '}') {
      tokens.push({ kind: ch, line });
      i++;
      continue;
    }
    if (ch === '#') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }

    const startLine = line;
    let raw = '';
    if (ch === '"' || ch === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i];
        if (c === '\\' && i + 1 < n) {
          // An escaped character never closes the string.
          if (text[i + 1] === '\n') line++;
          raw += c + text[i + 1];
          i += 2;
          continue;
        }
        if (c === ch) {
          closed = true;
          i++;
          break;
        }
        if (c === '\n') line++;
        raw += c;
        i++;
      }
      if (!closed) {
        throw new ConfigError(file, startLine, `unterminated quoted string: missing closing ${ch}`);
      }
      if (i < n && !isSpace(text[i]) && text[i] !== ';' && text[i] !== '{') {
        throw new ConfigError(file, line, `unexpected "${text[i]}" after a quoted string`);
      }
      tokens.push({ kind: 'word', value: unescape(raw), quoted: true, line: startLine });
      continue;
    }

    while (i < n) {
      const c = text[i];
      if (c === '\\' && i + 1 < n) {
        if (text[i + 1] === '\n') line++;
        raw += c + text[i + 1];
        i += 2;
        continue;
      }
      if (c === '$' && text[i + 1] === '{') {
        raw += '${';
        i += 2;
        continue;
      }
      if (isSpace(c) || c === ';' || c === '{') break;
      raw += c;
      i++;
    }
    tokens.push({ kind: 'word', value: unescape(raw), quoted: false, line: startLine });
  }
  return tokens;
}

/** Tokenizes and builds the statement tree; unbalanced blocks and unterminated directives are errors. */
export function parseStatements(text: string, file: string): Statement[] {
  const root: Statement[] = [];
  const stack: Array<{ list: Statement[]; opener: Statement | null }> = [{ list: root, opener: null }];
  let pending: Word[] = [];

  const unterminated = (words: Word[]): ConfigError =>
    new ConfigError(file, words[0].line, `directive "${words[0].value}" is not terminated by ";"`);

  for (const token of tokenize(text, file)) {
    const top = stack[stack.length - 1];
    switch (token.kind) {
      case 'word':
        pending.push({ value: token.value, quoted: token.quoted, line: token.line });
        break;
      case ';': {
        if (pending.length === 0) throw new ConfigError(file, token.line, 'unexpected ";"');
        top.list.push({ name: pending[0].value, args: pending.slice(1), line: pending[0].line, block: null });
        pending = [];
        break;
      }
      case '{': {
        if (pending.length === 0) throw new ConfigError(file, token.line, 'unexpected "{"');
        const statement: Statement = { name: pending[0].value, args: pending.slice(1), line: pending[0].line, block: [] };
        top.list.push(statement);
        stack.push({ list: statement.block as Statement[], opener: statement });
        pending = [];
        break;
      }
      case '}': {
        if (pending.length > 0) throw unterminated(pending);
        if (stack.length === 1) throw new ConfigError(file, token.line, 'unexpected "}"');
        stack.pop();
        break;
      }
    }
  }
  if (pending.length > 0) throw unterminated(pending);
  if (stack.length > 1) {
    const opener = stack[stack.length - 1].opener as Statement;
    throw new ConfigError(
      file,
      opener.line,
      `unexpected end of file, expecting "}": the "${opener.name}" block opened here is not closed`,
    );
  }
  return root;
}
