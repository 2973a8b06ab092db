/**
 * `Session-ID` / `X-Session-ID` (spec §3.3, deviation D10).
 *
 * Surrounding spaces and tabs are trimmed (as HTTP does with header values); the rest must be
 * 1..`maxLength` characters of `[A-Za-z0-9_-]` (the module's character set). The module has no
 * explicit limit and fails with 5xx for long ids (Q30); the gateway rejects them with 400.
 * Ids are case-sensitive.
 */

/** The gateway's default `maxLength` (D10). */
export const DEFAULT_SESSION_ID_MAX_LENGTH = 200;

export type ParseSessionIdResult = { ok: true; id: string } | { ok: false; reason: string };

const ID = /^[A-Za-z0-9_-]+$/;

export function parseSessionId(value: string, maxLength: number): ParseSessionIdResult {
  let a = 0;
  let b = value.length;
  while (a < b && (value[a] === ' ' || value[a] === '\t')) a++;
  while (b > a && (value[b - 1] === ' ' || value[b - 1] === '\t')) b--;
  const id = value.slice(a, b);
  if (id.length === 0) return { ok: false, reason: 'empty Session-ID' };
  if (id.length > maxLength) return { ok: false, reason: `Session-ID longer than ${maxLength} characters` };
  if (!ID.test(id)) return { ok: false, reason: 'Session-ID may only contain A-Z a-z 0-9 _ -' };
  return { ok: true, id };
}
