/**
 * `Content-Range` / `X-Content-Range` of a resumable segment (spec §3.4, deviation D13).
 *
 * Accepted: `bytes START-END/TOTAL`, where the unit is `bytes` in any case followed by exactly
 * one space, and each number is one or more ASCII digits (leading zeros allowed). Nothing else
 * may appear: no other whitespace, no `*`, no sign, no second range.
 *
 * Copied from the module: `start ≤ end`, `end < total` (so `start < total` and `total > 0`),
 * leading zeros, the case-insensitive unit, the single space.
 * Fixed (D13): an empty number (`bytes -3/4`) is rejected instead of read as 0, and a number
 * above `Number.MAX_SAFE_INTEGER` (2^53−1) is rejected instead of wrapping at 2^64.
 */
import { quoteValue } from './quote';

/** One segment: bytes `start…end` (inclusive) of a file of `total` bytes. */
export interface SegmentRange {
  start: number;
  end: number;
  total: number;
}

export type ParseContentRangeResult = { ok: true; range: SegmentRange } | { ok: false; reason: string };

const SYNTAX = /^([0-9]*)-([0-9]*)\/([0-9]*)$/;

/** Parse a decimal digit string (non-empty, digits only) if it is ≤ 2^53−1, else null. */
function safeNumber(digits: string): number | null {
  const significant = digits.replace(/^0+/, '');
  if (significant.length > 16) return null; // 2^53−1 has 16 digits
  const n = BigInt(significant === '' ? '0' : significant);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : null;
}

export function parseContentRange(value: string): ParseContentRangeResult {
  const fail = (why: string): ParseContentRangeResult => ({
    ok: false,
    reason: `invalid Content-Range ${quoteValue(value)}: ${why}`,
  });

  if (value.length === 0) return { ok: false, reason: 'empty Content-Range' };
  if (value.length < 6 || value.slice(0, 6).toLowerCase() !== 'bytes ') {
    return fail('expected unit "bytes" followed by one space');
  }
  const m = SYNTAX.exec(value.slice(6));
  if (m === null) {
    return fail(value.slice(6).includes('*') ? 'unknown length "*" is not accepted' : 'expected START-END/TOTAL');
  }
  const [, s, e, t] = m as unknown as [string, string, string, string];
  if (s === '' || e === '' || t === '') return fail('empty number');

  const start = safeNumber(s);
  const end = safeNumber(e);
  const total = safeNumber(t);
  if (start === null || end === null || total === null) return fail('number larger than 2^53-1');

  if (total === 0) return fail('total is 0');
  if (end < start) return fail('end before start');
  if (end >= total) return fail('end not below total');
  return { ok: true, range: { start, end, total } };
}

/** Format a segment as the module's `$upload_content_range` value: `bytes S-E/T`. */
export function formatContentRange(range: SegmentRange): string {
  return `bytes ${range.start}-${range.end}/${range.total}`;
}
