/**
 * Values of the operations directives (nginx's access phase and logs, CORS, graceful stop):
 * `allow`/`deny`, `access_log`, `error_log`, `auth_request`, `auth_request_cache`, the `cors_*`
 * directives. Pure parsers shared by the file and `resolveConfig`; they throw `ValueError`.
 */
import { isIP } from 'node:net';
import * as path from 'node:path';
import { ValueError } from './errors';
import type { AccessRule, AuthRequestCache, ErrorLog } from './types';
import { parseTime } from './units';

/**
 * `allow ADDRESS|CIDR|all` / `deny …`, as nginx's access module reads them: an IPv4 or IPv6
 * address, a block `ADDRESS/BITS` (host bits are masked off, nginx only warns about them), or
 * `all`. `unix:` is refused (the gateway has no unix sockets).
 */
export function parseAccessRule(action: 'allow' | 'deny', value: string): AccessRule {
  const allow = action === 'allow';
  if (value === 'all') return { allow, source: value, family: 'all', address: '', prefix: 0 };
  const invalid = (why: string) => new ValueError(`invalid parameter "${value}" in "${action}" directive: ${why}`);
  if (value.startsWith('unix:')) throw invalid('unix sockets are not supported');
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const version = isIP(address);
  if (version === 0) throw invalid('expected an IPv4 or IPv6 address, ADDRESS/BITS or all');
  const bits = version === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const text = value.slice(slash + 1);
    prefix = /^[0-9]{1,3}$/.test(text) ? Number(text) : NaN;
    if (!(prefix >= 0 && prefix <= bits)) throw invalid(`the prefix length must be 0 to ${bits}`);
  }
  return { allow, source: value, family: version === 4 ? 'ipv4' : 'ipv6', address, prefix };
}

/** `"allow 10.0.0.0/8"` / `"deny all"`: one rule of a configuration object's `access` list. */
export function accessRuleFromText(text: string): AccessRule {
  const m = /^\s*(allow|deny)\s+(\S+)\s*$/.exec(text);
  if (!m) throw new ValueError(`invalid access rule "${text}": expected "allow ADDRESS" or "deny ADDRESS" (an address, ADDRESS/BITS or all)`);
  return parseAccessRule(m[1] as 'allow' | 'deny', m[2]);
}

/** A log file path (relative: to the configuration's directory), for `access_log` and `error_log`. */
function logPath(value: string, baseDir: string, directive: string): string {
  if (value.length === 0 || value.includes('\0')) throw new ValueError(`invalid path "${value}" in "${directive}" directive`);
  if (value.includes('$')) throw new ValueError(`variables in ${directive} are not supported`);
  if (value.startsWith('syslog:')) throw new ValueError(`syslog in ${directive} is not supported: give a file (/dev/stdout works)`);
  return path.resolve(baseDir, value);
}

/** `access_log FILE|off` (one JSON line per request; nginx's formats are not supported). */
export function accessLogValue(value: string, baseDir: string): string | null {
  return value === 'off' ? null : logPath(value, baseDir, 'access_log');
}

/** nginx's error log levels and the logger's. */
const LEVELS: Readonly<Record<string, ErrorLog['level']>> = {
  debug: 'debug',
  info: 'info',
  notice: 'info',
  warn: 'warn',
  error: 'error',
  crit: 'fatal',
  alert: 'fatal',
  emerg: 'fatal',
};

/** `error_log FILE|stderr [LEVEL]` (default level `error`, as nginx). */
export function errorLogValue(file: string, level: string | undefined, baseDir: string): ErrorLog {
  const mapped = LEVELS[level ?? 'error'];
  if (!mapped) throw new ValueError(`invalid log level "${level}" in "error_log" directive (debug, info, notice, warn, error, crit, alert, emerg)`);
  return { file: file === 'stderr' ? 'stderr' : logPath(file, baseDir, 'error_log'), level: mapped };
}

/** `auth_request /uri|URL|off`: checked here, resolved against the proxy locations at the end. */
export function authRequestValue(value: string): string | null {
  if (value === 'off') return null;
  if (value.includes('$')) throw new ValueError('variables in auth_request are not supported');
  if (value.startsWith('@')) throw new ValueError(`auth_request "${value}": named locations are not supported (nginx's auth_request takes a URI)`);
  if (!value.startsWith('/') && !/^https?:\/\//i.test(value)) {
    throw new ValueError(`invalid auth_request "${value}": expected /uri (a location with proxy_pass) or an http:// URL`);
  }
  return value;
}

/** `auth_request_cache TIME [HEADER …]|off`: TIME 0 or `off` turns it off. */
export function authRequestCacheValue(time: string | number, headers: readonly string[]): AuthRequestCache | null {
  if (time === 'off') {
    if (headers.length > 0) throw new ValueError('"auth_request_cache off" takes no header names');
    return null;
  }
  const timeMs = typeof time === 'number' ? time : parseTime(time);
  if (!Number.isSafeInteger(timeMs) || timeMs < 0) throw new ValueError(`invalid time "${time}" in "auth_request_cache" directive`);
  const names = headers.map((name) => headerName(name, 'auth_request_cache').toLowerCase());
  return timeMs === 0 ? null : { timeMs, headers: names };
}

/** An HTTP header name (a token). */
export function headerName(value: string, directive: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) throw new ValueError(`invalid header name "${value}" in "${directive}" directive`);
  return value;
}

/** `cors_allow_origin`: `*`, or an origin `scheme://host[:port]` as browsers send it (lower case scheme and host). */
export function corsOriginValue(value: string): string {
  if (value === '*') return value;
  const m = /^(https?):\/\/([^/?#@\s]+)$/i.exec(value);
  let url: URL | null = null;
  try {
    url = m ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (!url) throw new ValueError(`invalid origin "${value}" in "cors_allow_origin" directive: expected * or scheme://host[:port], without a path`);
  return url.origin;
}
