/**
 * Byte-range sets of a resumable upload, and the range lists servers send back.
 *
 * A range is inclusive (`{ start: 0, end: 4 }` is five bytes). A normalised set is sorted,
 * pairwise disjoint and non-adjacent, like the module's state file. Pure functions, no I/O.
 */

export interface ByteRange {
  start: number;
  end: number;
}

export interface RangeList {
  ranges: ByteRange[];
  /** The total the list names; `undefined` when no entry carries one. */
  total: number | undefined;
}

const ENTRY = /^(\d+)-(\d+)(?:\/(\d+))?$/;

/**
 * Parses a range list as the module sends it in a 201 body or `Range` header
 * (`0-4/12,9-10/12`), and the compact form of the original project's README (`0-5,9-15/24`,
 * where entries without a total take the list's). Whitespace around entries is ignored; an empty
 * text is an empty list. Returns `null` for anything malformed: a bad entry, `start > end`,
 * `end ≥ total`, different totals, or numbers above 2^53−1.
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

/** `S-E/T` entries joined by `,` (the module's format). */
export function formatRangeList(ranges: readonly ByteRange[], total: number): string {
  return ranges.map((r) => `${r.start}-${r.end}/${total}`).join(',');
}

/** Sorted, merged (overlapping and touching ranges joined), new objects. */
export function normalise(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges.map((r) => ({ start: r.start, end: r.end })).sort((a, b) => a.start - b.start || a.end - b.end);
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

/** Number of bytes in a normalised set. */
export function coveredBytes(set: readonly ByteRange[]): number {
  let n = 0;
  for (const r of set) n += r.end - r.start + 1;
  return n;
}

/** The parts of `within` (default: the whole file `0…total−1`) that the normalised `set` lacks. */
export function missingRanges(set: readonly ByteRange[], total: number, within: ByteRange = { start: 0, end: total - 1 }): ByteRange[] {
  const out: ByteRange[] = [];
  let cursor = within.start;
  for (const r of set) {
    if (r.end < cursor) continue;
    if (r.start > within.end) break;
    if (r.start > cursor) out.push({ start: cursor, end: Math.min(r.start - 1, within.end) });
    cursor = Math.max(cursor, r.end + 1);
    if (cursor > within.end) break;
  }
  if (cursor <= within.end) out.push({ start: cursor, end: within.end });
  return out;
}

/** Splits ranges into segments of at most `segmentSize` bytes, in order. */
export function planSegments(ranges: readonly ByteRange[], segmentSize: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (const r of ranges) {
    for (let start = r.start; start <= r.end; start += segmentSize) out.push({ start, end: Math.min(r.end, start + segmentSize - 1) });
  }
  return out;
}

/** The set is exactly `0…total−1`. */
export function isWhole(set: readonly ByteRange[], total: number): boolean {
  return total > 0 && set.length === 1 && set[0]!.start === 0 && set[0]!.end === total - 1;
}
