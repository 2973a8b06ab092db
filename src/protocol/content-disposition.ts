/**
 * `Content-Disposition` of a raw upload or of a multipart part (spec §3.2, deviation D11).
 *
 * The module matches substrings (`filename=` anywhere, `name=` even inside `filename=`, quoted
 * values cut at `;`, no escapes, no `filename*`). The gateway parses parameters properly
 * (RFC 6266 / RFC 7578 style), while staying as lenient as the module about sloppy input:
 *
 * - The value is trimmed of spaces/tabs. Empty → rejected.
 * - The disposition type is the text up to the first `;`, `,`, space or tab; it must be
 *   `form-data` or `attachment` in any case (so `inline` and `attachmentX` are rejected).
 *   It may be followed by `;` parameters or by the legacy comma form `attachment, filename="x"`.
 *   (Also tolerated: a parameter after plain whitespace, `attachment filename=x`.)
 * - Parameters are separated by `;` (whitespace around `;` and `=` ignored, empty parameters
 *   `;;` skipped). Names are case-insensitive. The first occurrence of a name wins.
 * - A value is a quoted string or a bare value. A bare value runs to the next `;` and is
 *   trimmed, so it may contain spaces (`filename=my file.txt`, as the module). A quoted string
 *   may contain `;`. Inside quotes `\"` and `\\` are escapes; a backslash before any other
 *   character is kept as is, so unescaped Windows paths from browsers
 *   (`filename="C:\Docs\p.jpg"`) still work. An unterminated quoted string runs to the end of the
 *   value. Text between a closing quote and the next `;` is ignored.
 * - Malformed parameters (no `=`) are ignored, not rejected.
 * - `filename*` (RFC 8187 / 5987: `charset'language'percent-encoded`, charset `UTF-8` or
 *   `ISO-8859-1`, any case) takes precedence over `filename`. A `filename*` that cannot be
 *   decoded (unknown charset, bad `%` escape, invalid UTF-8) is ignored and `filename` is used.
 *   The decoded name is returned as UTF-8 bytes in a byte string. A plain `filename` is returned
 *   as the raw bytes it had on the wire. RFC 2231 continuations (`filename*0=`) are not supported.
 * - Leading DOS/UNIX path elements are stripped from the file name ({@link stripPath}).
 * - The field name is the `name` parameter, verbatim (no path stripping), `''` when absent.
 * - Control characters (CTLs other than HTAB, and DEL) in the value, or in a decoded `filename*`
 *   (`%00`, `%0D%0A`), are refused (D26): names go into the backend's form verbatim, where a CR LF
 *   could forge fields, and into file systems, where a NUL cuts them. The module passes them on.
 */
import { TextDecoder } from 'util';
import { quoteValue } from './quote';

export type DispositionType = 'form-data' | 'attachment';

export type ParseContentDispositionResult =
  | {
      ok: true;
      type: DispositionType;
      /** Path-stripped file name; `''` when there is none. */
      fileName: string;
      /** The `name` parameter; `''` when there is none. */
      fieldName: string;
      /** A `filename` or `filename*` parameter was present (whatever its value). */
      hasFileNameParam: boolean;
    }
  | { ok: false; reason: string };

function isOws(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s[a])) a++;
  while (b > a && isOws(s[b - 1])) b--;
  return s.slice(a, b);
}

/**
 * Strip leading DOS/UNIX path elements: everything up to and including the last `/` or `\`.
 * `C:\Docs\p.jpg` → `p.jpg`, `/etc/passwd` → `passwd`, `a/b\c` → `c`, `dir/` → `''`.
 * Unlike the module (Q15) a separator in the first position is stripped too (`/x` → `x`).
 */
export function stripPath(name: string): string {
  const i = Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\'));
  return i < 0 ? name : name.slice(i + 1);
}

/**
 * Parse the parameters that start at `from`. Returns lower-cased names mapped to their
 * (unquoted) values; the first occurrence of each name wins.
 */
function parseParameters(s: string, from: number): Map<string, string> {
  const params = new Map<string, string>();
  const n = s.length;
  let i = from;
  while (i < n) {
    while (i < n && (isOws(s[i]) || s[i] === ';')) i++;
    if (i >= n) break;

    let j = i;
    while (j < n && s[j] !== '=' && s[j] !== ';') j++;
    if (j >= n || s[j] === ';') {
      i = j; // a parameter without `=`: ignored
      continue;
    }
    const name = trimOws(s.slice(i, j)).toLowerCase();
    i = j + 1;
    while (i < n && isOws(s[i])) i++;

    let value = '';
    if (s[i] === '"') {
      i++;
      while (i < n) {
        const c = s[i];
        if (c === '\\' && i + 1 < n && (s[i + 1] === '"' || s[i + 1] === '\\')) {
          value += s[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      while (i < n && s[i] !== ';') i++; // junk after the closing quote
    } else {
      j = i;
      while (j < n && s[j] !== ';') j++;
      value = trimOws(s.slice(i, j));
      i = j;
    }
    if (name !== '' && !params.has(name)) params.set(name, value);
  }
  return params;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decode an RFC 8187 `ext-value` (`UTF-8''na%C3%AFve.txt`, `iso-8859-1'en'%A3%20rates`) to
 * UTF-8 bytes in a byte string. Returns null when it cannot be decoded: no two `'`, a charset
 * other than UTF-8/ISO-8859-1, a `%` not followed by two hex digits, or bytes that are not
 * valid UTF-8 for the UTF-8 charset. Characters other than `%HH` are taken literally.
 */
export function decodeExtValue(raw: string): string | null {
  const q1 = raw.indexOf("'");
  if (q1 < 0) return null;
  const q2 = raw.indexOf("'", q1 + 1);
  if (q2 < 0) return null;
  const charset = raw.slice(0, q1).toLowerCase();
  if (charset !== 'utf-8' && charset !== 'iso-8859-1') return null;

  const enc = raw.slice(q2 + 1);
  const bytes = Buffer.alloc(enc.length);
  let len = 0;
  for (let k = 0; k < enc.length; k++) {
    const c = enc.charCodeAt(k);
    if (c === 0x25) {
      const hex = enc.slice(k + 1, k + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      bytes[len++] = parseInt(hex, 16);
      k += 2;
    } else if (c > 0xff) {
      return null; // not a byte string
    } else {
      bytes[len++] = c;
    }
  }
  const decoded = bytes.subarray(0, len);
  if (charset === 'utf-8') {
    try {
      utf8Decoder.decode(decoded);
    } catch {
      return null;
    }
    return decoded.toString('latin1');
  }
  return Buffer.from(decoded.toString('latin1'), 'utf8').toString('latin1');
}

/** Control characters a file name may not hold (D26; tab allowed). */
export const CONTROL_CHARACTERS = /[\x00-\x08\x0a-\x1f\x7f]/;

export function parseContentDisposition(value: string): ParseContentDispositionResult {
  const v = trimOws(value);
  if (v === '') return { ok: false, reason: 'empty Content-Disposition' };
  if (CONTROL_CHARACTERS.test(v)) return { ok: false, reason: `control character in Content-Disposition ${quoteValue(value)}` };

  let i = 0;
  while (i < v.length && v[i] !== ';' && v[i] !== ',' && !isOws(v[i])) i++;
  const type = v.slice(0, i).toLowerCase();
  if (type !== 'form-data' && type !== 'attachment') {
    return {
      ok: false,
      reason: `invalid Content-Disposition ${quoteValue(value)}: type must be form-data or attachment`,
    };
  }
  while (i < v.length && isOws(v[i])) i++;
  if (v[i] === ';' || v[i] === ',') i++;

  const params = parseParameters(v, i);
  const star = params.get('filename*');
  const plain = params.get('filename');
  const decoded = star === undefined ? null : decodeExtValue(star);
  if (decoded !== null && CONTROL_CHARACTERS.test(decoded)) return { ok: false, reason: `control character in the filename* of Content-Disposition ${quoteValue(value)}` };
  const rawName = decoded ?? plain ?? '';

  return {
    ok: true,
    type,
    fileName: stripPath(rawName),
    fieldName: params.get('name') ?? '',
    hasFileNameParam: star !== undefined || plain !== undefined,
  };
}
