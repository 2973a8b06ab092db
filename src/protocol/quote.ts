/**
 * Helpers for putting client-supplied byte strings into one-line error reasons and log lines.
 */

/** Longest excerpt of a client value quoted in a reason (longer values are cut and marked). */
export const MAX_QUOTED_LENGTH = 80;

/**
 * Quote a byte string (one JS char = one byte) for a one-line, ASCII-only reason:
 * printable ASCII is kept, `"` and `\` are backslash-escaped, every other byte becomes `\xHH`
 * (a char above 0xFF, which a byte string never holds, becomes `\uHHHH`).
 * Values longer than {@link MAX_QUOTED_LENGTH} bytes are cut and end in `...` (outside the quotes).
 */
export function quoteValue(value: string, max: number = MAX_QUOTED_LENGTH): string {
  const cut = value.length > max;
  const part = cut ? value.slice(0, max) : value;
  let out = '"';
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += '\\' + part[i];
    else if (c >= 0x20 && c <= 0x7e) out += part[i];
    else if (c <= 0xff) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += '\\u' + c.toString(16).padStart(4, '0'); // not a byte string; shown anyway
  }
  return out + '"' + (cut ? '...' : '');
}
