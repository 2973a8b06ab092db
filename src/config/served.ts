/**
 * What every location the gateway serves (upload, progress, metrics) gets besides its own
 * directives: nginx's access phase (`allow`/`deny`, `auth_request` resolved to its target), logs
 * and CORS. Used by `finalizeConfig`.
 */
import { configError, type Where } from './errors';
import type { LocationDraft, ScopeDraft, TargetDraft } from './finalize';
import type { FullSettings, SettingKey } from './settings';
import type { AuthRequest, ServedLocationSettings, UploadPass } from './types';

/** Resolves an `upload_pass`-like target (`/uri` through the proxy locations, or a URL). */
export type ResolveTarget = (target: TargetDraft, directive: string) => { pass: UploadPass; via: LocationDraft | null };

/** Where a setting in effect for `scope` was written (the innermost level that has it). */
export function writtenAt(scope: ScopeDraft, key: SettingKey): Where | undefined {
  for (let s: ScopeDraft | null = scope; s; s = s.parent) {
    const where = s.written.get(key);
    if (where) return where;
  }
  return undefined;
}

/**
 * `auth_request`: `/uri` goes through the location with `proxy_pass` that matches it (its
 * timeouts, when it sets them), as `upload_pass /uri` does; a URL goes straight there.
 */
function resolveAuthRequest(scope: ScopeDraft, settings: FullSettings, resolve: ResolveTarget): AuthRequest | null {
  const value = settings.authRequest;
  if (value === null) return null;
  const where = writtenAt(scope, 'authRequest')!;
  const { pass, via } = resolve({ value, where }, 'auth_request');
  return {
    source: value,
    origin: pass.origin,
    hostHeader: pass.hostHeader,
    path: pass.path ?? '/',
    connectTimeoutMs: via?.scope.settings.backendConnectTimeoutMs ?? settings.backendConnectTimeoutMs,
    readTimeoutMs: via?.scope.settings.backendReadTimeoutMs ?? settings.backendReadTimeoutMs,
  };
}

/** A served location's access phase, logs and CORS (`auth_request` resolved); CORS credentials need named origins. */
export function servedSettings(scope: ScopeDraft, settings: FullSettings, resolve: ResolveTarget): ServedLocationSettings {
  if (settings.corsAllowCredentials && settings.corsAllowOrigins.includes('*')) {
    throw configError(writtenAt(scope, 'corsAllowCredentials')!, '"cors_allow_credentials on" needs the allowed origins named: with "cors_allow_origin *" any site could send the user\'s credentials');
  }
  return {
    access: settings.access,
    authRequest: resolveAuthRequest(scope, settings, resolve),
    authRequestCache: settings.authRequestCache,
    accessLog: settings.accessLog,
    corsAllowOrigins: settings.corsAllowOrigins,
    corsAllowHeaders: settings.corsAllowHeaders,
    corsExposeHeaders: settings.corsExposeHeaders,
    corsAllowCredentials: settings.corsAllowCredentials,
    corsMaxAgeMs: settings.corsMaxAgeMs,
  };
}

