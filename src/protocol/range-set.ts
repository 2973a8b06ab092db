/**
 * Sets of received byte ranges of a resumable upload (spec §3.9, §3.10).
 *
 * A range is inclusive `{ start, end }` with `0 ≤ start ≤ end ≤ 2^53−1` (integers). A set is an
 * array of ranges sorted ascending, pairwise disjoint and non-adjacent (`end + 1 < next.start`),
 * the invariant of the module's state file. Functions taking a set assume the invariant holds
 * (they do not re-check it); functions taking a single range throw a RangeError for an invalid
 * one. Results are always new arrays of new objects.
 */

export interface ByteRange {
  start: number;
  end: number;
}

function checkRange(r: ByteRange): void {
  if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.end) || r.start < 0 || r.end < r.start) {
    throw new RangeError(`invalid byte range ${String(r.start)}-${String(r.end)}`);
  }
}

/** Smallest index k with pred(set[k]) true, for a predicate that is monotone over the set. */
function lowerBound(set: readonly ByteRange[], pred: (r: ByteRange) => boolean): number {
  let lo = 0;
  let hi = set.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(set[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

const copy = (r: ByteRange): ByteRange => ({ start: r.start, end: r.end });

/**
 * Add `r` to the set, merging it with every range it overlaps or touches (§3.9:
 * `0-1`+`2-3` → `0-3`, `0-4`+`3-6` → `0-6`).
 */
export function addRange(set: readonly ByteRange[], r: ByteRange): ByteRange[] {
  checkRange(r);
  const lo = lowerBound(set, (c) => c.end + 1 >= r.start);
  let hi = lo;
  let start = r.start;
  let end = r.end;
  while (hi < set.length && set[hi]!.start <= end + 1) {
    start = Math.min(start, set[hi]!.start);
    end = Math.max(end, set[hi]!.end);
    hi++;
  }
  const out = set.slice(0, lo).map(copy);
  out.push({ start, end });
  for (let k = hi; k < set.length; k++) out.push(copy(set[k]!));
  return out;
}

/** The set is exactly one range `0…total−1` (the upload is complete). */
export function isComplete(set: readonly ByteRange[], total: number): boolean {
  return total > 0 && set.length === 1 && set[0]!.start === 0 && set[0]!.end === total - 1;
}

/** Number of bytes the set covers. */
export function coveredBytes(set: readonly ByteRange[]): number {
  let n = 0;
  for (const r of set) n += r.end - r.start + 1;
  return n;
}

/** The parts of `r` that are already in the set, ascending. */
export function intersect(set: readonly ByteRange[], r: ByteRange): ByteRange[] {
  checkRange(r);
  const out: ByteRange[] = [];
  for (let k = lowerBound(set, (c) => c.end >= r.start); k < set.length && set[k]!.start <= r.end; k++) {
    out.push({ start: Math.max(r.start, set[k]!.start), end: Math.min(r.end, set[k]!.end) });
  }
  return out;
}

/** The parts of `r` that are not in the set, ascending. */
export function subtract(r: ByteRange, set: readonly ByteRange[]): ByteRange[] {
  checkRange(r);
  const out: ByteRange[] = [];
  let cursor = r.start;
  for (let k = lowerBound(set, (c) => c.end >= r.start); k < set.length && set[k]!.start <= r.end; k++) {
    if (set[k]!.start > cursor) out.push({ start: cursor, end: set[k]!.start - 1 });
    cursor = set[k]!.end + 1;
  }
  if (cursor <= r.end) out.push({ start: cursor, end: r.end });
  return out;
}

/** The two ranges share at least one byte (touching is not overlapping). */
export function overlaps(a: ByteRange, b: ByteRange): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/**
 * The module's 201 `Range` header value and body (§3.10): `S-E/T` entries joined by `,`, no
 * spaces, no newline. Truncation (Q7, `upload_range_header_buffer_size`): an entry (with its
 * leading `,`) is appended only while the text so far is shorter than `truncateAt` bytes; the
 * entry that crosses the limit is written in full and every later entry is dropped. So the result
 * is a prefix of the full list and at most `truncateAt` + one entry long; `truncateAt` 0 → `''`.
 */
export function formatRangeList(set: readonly ByteRange[], total: number, truncateAt: number): string {
  let out = '';
  for (let k = 0; k < set.length; k++) {
    if (out.length >= truncateAt) break;
    out += `${k === 0 ? '' : ','}${set[k]!.start}-${set[k]!.end}/${total}`;
  }
  return out;
}

/** The whole list, never truncated (status query, D22). */
export function formatRangeListFull(set: readonly ByteRange[], total: number): string {
  return formatRangeList(set, total, Infinity);
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return s.slice(a, b);
}

const ENTRY = /^([0-9]+)-([0-9]+)(?:\/([0-9]+))?$/;

function safeInt(digits: string): number | null {
  if (digits.replace(/^0+/, '').length > 16) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Parse a range list: the module format `0-4/12,9-10/12` or the compact form `0-5,9-15/24`
 * (only some entries, at least the last, carry the total). Spaces/tabs around entries are
 * tolerated. Every given total must be the same and > 0, and each entry must satisfy
 * `start ≤ end < total`. The ranges are returned as a normalised set (sorted, overlapping and
 * adjacent ones merged), so an unsorted list is accepted. Anything else → null (so is `''`:
 * without an entry there is no total).
 */
export function parseRangeList(text: string): { ranges: ByteRange[]; total: number } | null {
  const parts = text.split(',');
  let total: number | null = null;
  const raw: ByteRange[] = [];
  for (let k = 0; k < parts.length; k++) {
    const m = ENTRY.exec(trimOws(parts[k]!));
    if (m === null) return null;
    const start = safeInt(m[1]!);
    const end = safeInt(m[2]!);
    if (start === null || end === null) return null;
    if (m[3] !== undefined) {
      const t = safeInt(m[3]);
      if (t === null || (total !== null && t !== total)) return null;
      total = t;
    } else if (k === parts.length - 1) {
      return null;
    }
    raw.push({ start, end });
  }
  if (total === null || total === 0) return null;
  for (const r of raw) if (r.start > r.end || r.end >= total) return null;

  raw.sort((a, b) => a.start - b.start);
  const ranges: ByteRange[] = [];
  for (const r of raw) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else ranges.push({ start: r.start, end: r.end });
  }
  return { ranges, total };
}
