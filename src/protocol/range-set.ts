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
 * Without `truncateAt`, the whole list (the status query's, D22).
 */
export function formatRangeList(set: readonly ByteRange[], total: number, truncateAt = Infinity): string {
  let out = '';
  for (let k = 0; k < set.length; k++) {
    if (out.length >= truncateAt) break;
    out += `${k === 0 ? '' : ','}${set[k]!.start}-${set[k]!.end}/${total}`;
  }
  return out;
}


/** A range list as servers send it: its ranges (normalised) and the total it names, if any. */
export interface RangeList {
  ranges: ByteRange[];
  /** The total the list names; `undefined` when no entry carries one. */
  total: number | undefined;
}

const ENTRY = /^(\d+)-(\d+)(?:\/(\d+))?$/;

/**
 * Parses a range list as the module sends it in a 201 body or `Range` header (`0-4/12,9-10/12`),
 * and the compact form of the original client's README (`0-5,9-15/24`, where entries without a
 * total take the list's). Whitespace around entries is ignored; an empty text is an empty list.
 * Returns `null` for anything malformed: a bad entry, `start > end`, `end ≥ total`, different
 * totals, a total of 0, or numbers above 2^53−1. Shared by the server and the client bundle.
 */
export function parseRangeList(text: string): RangeList | null {
  const trimmed = text.trim();
  if (trimmed === '') return { ranges: [], total: undefined };
  let total: number | undefined;
  const raw: ByteRange[] = [];
  for (const entry of trimmed.split(',')) {
    const m = ENTRY.exec(entry.trim());
    if (!m) return null;
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start > end) return null;
    if (m[3] !== undefined) {
      const t = Number(m[3]);
      if (!Number.isSafeInteger(t) || (total !== undefined && t !== total)) return null;
      total = t;
    }
    raw.push({ start, end });
  }
  if (total !== undefined && raw.some((r) => r.end >= total!)) return null;
  return { ranges: normalise(raw), total };
}

/** Sorted, merged (overlapping and touching ranges joined), new objects: any list of ranges as a set. */
export function normalise(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges.map(copy).sort((a, b) => a.start - b.start || a.end - b.end);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push(r);
  }
  return out;
}

export function union(a: readonly ByteRange[], b: readonly ByteRange[]): ByteRange[] {
  return normalise([...a, ...b]);
}

/** The parts of `within` (default: the whole file `0…total−1`) that the set lacks. */
export function missingRanges(set: readonly ByteRange[], total: number, within: ByteRange = { start: 0, end: total - 1 }): ByteRange[] {
  return subtract(within, set);
}

/** Splits ranges into segments of at most `segmentSize` bytes, in order. */
export function planSegments(ranges: readonly ByteRange[], segmentSize: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (const r of ranges) {
    for (let start = r.start; start <= r.end; start += segmentSize) out.push({ start, end: Math.min(r.end, start + segmentSize - 1) });
  }
  return out;
}
