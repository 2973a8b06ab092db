/**
 * Hashed store directories, nginx's `proxy_temp_path` scheme (spec §3.7): with levels
 * `l1 [l2 [l3]]`, level 1 is the LAST `l1` characters of the name, level 2 the `l2` characters
 * before those, and so on. `sess1` with `[1]` → `1/sess1`; `xy12` with `[1, 1]` → `2/1/xy12`;
 * `0000000247` with `[1, 2]` → `7/24/0000000247`.
 *
 * The state-file quirk (Q18) is the caller's: pass the full state file name, e.g.
 * `hashedRelativePath('abc.state', [1])` → `e/abc.state`.
 *
 * Short names (a choice; the module reads the bytes before the name, starting with the `/` that
 * precedes it, and the path then "silently collapses"): a level takes whatever characters are
 * left (fewer than asked), and a level with none left is skipped. So `2` with `[1, 1]` gives
 * `2/2`, the same directory the module ends up using (`<store>/2//2` collapses to `<store>/2/2`).
 */

/** The path of `name` below the store directory, with posix separators. */
export function hashedRelativePath(name: string, levels: readonly number[]): string {
  if (name.length === 0) throw new RangeError('hashedRelativePath: empty name');
  const dirs: string[] = [];
  let end = name.length;
  for (const level of levels) {
    if (!Number.isInteger(level) || level < 1) {
      throw new RangeError(`hashedRelativePath: invalid level ${String(level)}`);
    }
    const start = Math.max(0, end - level);
    if (start < end) dirs.push(name.slice(start, end));
    end = start;
  }
  dirs.push(name);
  return dirs.join('/');
}
