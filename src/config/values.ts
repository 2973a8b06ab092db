/**
 * Parsers for directive values that are more than a size or a time. Shared by the file parser and
 * `resolveConfig` so that both accept exactly the same values. They throw `ValueError`; callers add
 * the file and line.
 */
import * as path from 'node:path';
import { ValueError } from './errors';
import type { StorePath } from './types';

/** `on` / `off`, exactly (lower case). */
export function parseFlag(value: string, directive: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new ValueError(`invalid value "${value}" in "${directive}" directive, it must be "on" or "off"`);
}

/** A plain decimal integer within [min, max]. */
export function parseInteger(value: string, directive: string, min: number, max: number): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new ValueError(`invalid value "${value}" in "${directive}" directive: expected a number`);
  checkIntegerRange(n, directive, min, max);
  return n;
}

export function checkIntegerRange(n: number, directive: string, min: number, max: number): void {
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ValueError(`"${directive}" must be an integer from ${min} to ${max} (got ${n})`);
  }
}

/**
 * `upload_store dir [l1 [l2 [l3]]]`: a relative `dir` is taken relative to `baseDir` (the config
 * file's directory); a trailing `/` is removed; each level is 1 or 2 characters, at most 3 levels
 * (nginx's `proxy_temp_path` scheme).
 */
export function parseStorePath(dir: string, levels: ReadonlyArray<string | number>, baseDir: string, directive: string): StorePath {
  if (dir.includes('$')) throw new ValueError(`variables in ${directive} are not supported`);
  if (dir.length === 0) throw new ValueError(`empty path in "${directive}" directive`);
  if (dir.includes('\0')) throw new ValueError(`invalid path in "${directive}" directive`);
  if (levels.length > 3) throw new ValueError(`too many levels in "${directive}" directive: at most 3`);
  const parsed = levels.map((level) => {
    const text = String(level);
    if (text !== '1' && text !== '2') {
      throw new ValueError(`invalid level "${text}" in "${directive}" directive: each level must be 1 or 2`);
    }
    return Number(text);
  });
  return { dir: path.resolve(baseDir, dir), levels: parsed };
}

/**
 * nginx access syntax (`ngx_conf_set_access_slot`): `user:rw|r`, `group:rw|r`, `all:rw|r`. The
 * owner keeps `rw` unless `user:` is given, so `group:rw` alone is 0660.
 */
export function parseAccess(args: readonly string[], directive: string): number {
  if (args.length === 0) throw new ValueError(`invalid number of arguments in "${directive}" directive`);
  let user = 0o600;
  let mode = 0;
  for (const arg of args) {
    const m = /^(user|group|all):(rw|r)$/.exec(arg);
    if (!m) throw new ValueError(`invalid value "${arg}" in "${directive}" directive: expected user:rw, group:r, all:r …`);
    const shift = m[1] === 'user' ? 6 : m[1] === 'group' ? 3 : 0;
    if (m[1] === 'user') user = 0;
    mode |= (m[2] === 'rw' ? 6 : 4) << shift;
  }
  return mode | user;
}

export function checkFileMode(mode: number, directive: string): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new ValueError(`"${directive}" must be a file mode from 0 to 0o777 (got ${mode})`);
  }
}

/**
 * One `upload_cleanup` argument, as the module reads it: a range when the 4th character is `-`
 * (`500-505`, also `500-0505`), else a single code (`0500` = 500). Codes must be 200–599 (Q25).
 */
export function parseCleanupCode(arg: string, directive = 'upload_cleanup'): [number, number] {
  const number = (text: string): number => (/^[0-9]+$/.test(text) ? Number(text) : NaN);
  let lo: number;
  let hi: number;
  if (arg.length > 4 && arg[3] === '-') {
    lo = number(arg.slice(0, 3));
    if (Number.isNaN(lo)) throw new ValueError(`invalid lower bound "${arg}" in "${directive}" directive`);
    hi = number(arg.slice(4));
    if (Number.isNaN(hi)) throw new ValueError(`invalid upper bound "${arg}" in "${directive}" directive`);
    if (hi < lo) throw new ValueError(`upper bound must be greater than lower bound in "${arg}" in "${directive}" directive`);
  } else {
    lo = hi = number(arg);
    if (Number.isNaN(lo)) throw new ValueError(`invalid code "${arg}" in "${directive}" directive`);
  }
  if (lo < 200 || hi > 599) throw new ValueError(`value(s) "${arg}" in "${directive}" directive must be between 200 and 599`);
  return [lo, hi];
}

/** `upload_pass_form_field` patterns are JavaScript regular expressions (D5), unanchored. */
export function checkRegex(source: string, directive: string): string {
  try {
    new RegExp(source);
  } catch (err) {
    throw new ValueError(`invalid regular expression "${source}" in "${directive}" directive: ${(err as Error).message}`);
  }
  return source;
}

/** `listen [ADDR:]PORT` / `listen ADDR` / `listen [IPv6]:PORT`. A port alone or `*` means every address, as in nginx. */
/**
 * `listen [ADDR:]PORT` (and the command lines' `--listen`): a bare port binds every address, as in
 * nginx, unless `bareHost` says otherwise.
 */
export function parseListen(value: string, bareHost = '0.0.0.0'): { host: string; port: number } {
  const invalid = (why: string): ValueError => new ValueError(`invalid listen address "${value}": ${why}`);
  let host: string;
  let portText: string | null;
  if (value.startsWith('unix:')) throw invalid('unix sockets are not supported');
  if (value.startsWith('[')) {
    const m = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(value);
    if (!m) throw invalid('expected [IPv6]:PORT');
    host = m[1];
    portText = m[2] ?? null;
  } else if (/^[0-9]+$/.test(value)) {
    host = bareHost;
    portText = value;
  } else {
    const colon = value.lastIndexOf(':');
    host = colon >= 0 ? value.slice(0, colon) : value;
    portText = colon >= 0 ? value.slice(colon + 1) : null;
    if (host !== '*' && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) throw invalid('bad address');
  }
  let port = 80;
  if (portText !== null) {
    port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    // Port 0 (any free port) is accepted although nginx refuses it: handy for tests.
    if (!(port >= 0 && port <= 65535)) throw invalid('the port must be a number from 0 to 65535');
  }
  if (host === '*') host = '0.0.0.0';
  return { host, port };
}

/** A parsed `proxy_pass` / `upload_pass` URL. */
export interface BackendUrl {
  origin: string;
  hostHeader: string;
  /** The path as written (with everything after the authority), or null when the URL has none. */
  path: string | null;
}

/**
 * `http://host[:port][/path]` or `https://…`. `http://h:p` has no path (the client's request-target
 * is forwarded), `http://h:p/` has the path `/`. Query strings, fragments and user info are refused:
 * the gateway decides the query itself (`upload_pass_args`).
 */
export function parseBackendUrl(value: string, directive: string): BackendUrl {
  if (value.includes('$')) throw new ValueError(`variables in ${directive} are not supported`);
  const m = /^(https?):\/\/([^/?#]*)(.*)$/i.exec(value);
  if (!m) throw new ValueError(`invalid URL "${value}" in "${directive}" directive: expected http://host[:port][/path] or https://…`);
  const [, , authority, rest] = m;
  if (authority.length === 0) throw new ValueError(`no host in "${value}" in "${directive}" directive`);
  if (authority.includes('@')) throw new ValueError(`user info in "${value}" in "${directive}" directive is not supported`);
  if (rest.includes('?') || rest.includes('#')) {
    throw new ValueError(`a query or fragment in "${value}" in "${directive}" directive is not supported`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValueError(`invalid URL "${value}" in "${directive}" directive`);
  }
  return { origin: url.origin, hostHeader: url.host, path: rest.length > 0 ? rest : null };
}

/** Checks an `upload_state_redis` URL: `redis://[[user]:password@]host[:port][/db]` (or `rediss://`). Returns an error text or null. */
export function redisUrlProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `invalid Redis URL "${value}": expected redis://host[:port][/db]`;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return `invalid Redis URL "${value}": the scheme must be redis:// or rediss://`;
  if (!url.hostname) return `invalid Redis URL "${value}": no host`;
  if (!/^\/?(\d+)?$/.test(url.pathname)) return `invalid Redis URL "${value}": the path must be a database number (/0)`;
  if (url.search || url.hash) return `invalid Redis URL "${value}": no query or fragment allowed`;
  return null;
}
