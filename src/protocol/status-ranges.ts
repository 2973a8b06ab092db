/**
 * Status lists such as `upload_cleanup 400 404 499 500-505` (spec §6), held as inclusive
 * `[lo, hi]` pairs (a single code is `[c, c]`).
 */

/** True when `status` lies in any of the inclusive `[lo, hi]` ranges. */
export function statusInRanges(status: number, ranges: ReadonlyArray<readonly [number, number]>): boolean {
  for (const [lo, hi] of ranges) {
    if (status >= lo && status <= hi) return true;
  }
  return false;
}
