/**
 * nginx sizes and times.
 *
 * Sizes follow `ngx_parse_size`/`ngx_parse_offset`: decimal digits with an optional
 * `k`/`K` (KiB), `m`/`M` (MiB) or `g`/`G` (GiB) suffix; nothing else (no sign, no fraction,
 * no spaces). Times follow `ngx_parse_time` for millisecond directives: units `w d h m s ms` in
 * decreasing order, each at most once (`1h30m`), a bare number meaning seconds. nginx also accepts
 * a unit without digits (`h` = 0) and a trailing number after `s` (`1s5` = 6s); those are refused
 * here as they are certainly typos.
 */
import { ValueError } from './errors';

const SIZE_SCALE: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `"1024"`, `"10k"`, `"8M"`, `"1g"` → bytes. Throws `ValueError` for anything else. */
export function parseSize(text: string): number {
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(text);
  if (!m) throw new ValueError(`invalid size "${text}": expected bytes or a number with k, m or g (e.g. 512, 10k, 8m, 1g)`);
  const bytes = Number(m[1]) * SIZE_SCALE[m[2].toLowerCase()];
  if (!Number.isSafeInteger(bytes)) throw new ValueError(`size "${text}" is too large`);
  return bytes;
}

/** The shortest exact nginx spelling of a byte count (`10485760` → `"10m"`). */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new ValueError(`invalid size ${bytes}`);
  for (const unit of ['g', 'm', 'k']) {
    const scale = SIZE_SCALE[unit];
    if (bytes !== 0 && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}

/** Time units in the order nginx requires them, with their length in milliseconds. */
const TIME_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['w', 7 * 24 * 3600 * 1000],
  ['d', 24 * 3600 * 1000],
  ['h', 3600 * 1000],
  ['m', 60 * 1000],
  ['s', 1000],
  ['ms', 1],
];

/** `"500ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"2d"`, `"1w"`, `"90"` (seconds) → milliseconds. Throws `ValueError`. */
export function parseTime(text: string): number {
  const invalid = (): ValueError =>
    new ValueError(`invalid time "${text}": expected e.g. 500ms, 30s, 5m, 1h30m, 2d, 1w, or a number of seconds`);
  // A number, an optional unit, then optional spaces (nginx allows "1h 30m" inside quotes).
  const piece = /([0-9]+)(ms|w|d|h|m|s)? */y;
  let total = 0;
  let lastRank = -1;
  let pos = 0;
  if (text.length === 0) throw invalid();
  while (pos < text.length) {
    piece.lastIndex = pos;
    const m = piece.exec(text);
    if (!m) throw invalid();
    pos = piece.lastIndex;
    let unit = m[2];
    if (unit === undefined) {
      // A bare number is seconds; only allowed last, after units larger than a second.
      if (pos !== text.length) throw invalid();
      unit = 's';
    }
    const rank = TIME_UNITS.findIndex(([name]) => name === unit);
    if (rank <= lastRank) throw invalid();
    lastRank = rank;
    total += Number(m[1]) * TIME_UNITS[rank][1];
    if (!Number.isSafeInteger(total)) throw new ValueError(`time "${text}" is too large`);
  }
  return total;
}

/** An nginx spelling of a millisecond count (`5400000` → `"1h30m"`, `0` → `"0s"`). */
export function formatTime(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new ValueError(`invalid time ${ms}`);
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, scale] of TIME_UNITS) {
    const count = Math.floor(rest / scale);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * scale;
    }
  }
  return out;
}
