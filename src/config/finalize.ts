/**
 * The one place where a configuration becomes final: inheritance, defaults, `upload_pass`
 * resolution and the checks that need the whole configuration. The file parser and
 * `resolveConfig` both build a `ConfigDraft` (values already parsed and checked one by one) and
 * hand it here.
 */
import { atWhere, configError, describeWhere, type Where } from './errors';
import { defaultSettings, mergeSettings, SETTINGS, type FullSettings, type SettingKey, type Settings, type SettingSpec } from './settings';
import { servedSettings, writtenAt } from './served';
import type {
  GatewayConfig,
  LocationConfig,
  MetricsLocationConfig,
  ProgressLocationConfig,
  ProgressZoneConfig,
  UploadPass,
} from './types';
import { parseBackendUrl, type BackendUrl } from './values';

/** One level of settings (top level, http, server or location) and the level it inherits from. */
export interface ScopeDraft {
  settings: Settings;
  /** Where each setting of this level was written. */
  written: Map<SettingKey, Where>;
  parent: ScopeDraft | null;
}

export interface TargetDraft {
  value: string;
  where: Where;
}

export interface LocationDraft {
  match: 'exact' | 'prefix' | 'named';
  /** The URI, or the name with its `@` for a named location. */
  path: string;
  where: Where;
  scope: ScopeDraft;
  uploadPass: TargetDraft | null;
  proxyPass: TargetDraft | null;
  /** Where `internal;` was written, if it was. */
  internal: Where | null;
  /** `report_uploads ZONE`: a progress location. */
  reportUploads: TargetDraft | null;
  /** Where `upload_metrics;` was written: a metrics location. */
  metrics?: Where | null;
}

/** `upload_progress NAME SIZE`. */
export interface ZoneDraft {
  size: number;
  where: Where;
}

export interface ConfigDraft {
  source: string;
  /** Directory that relative paths are resolved against. */
  baseDir: string;
  listen: { host: string; port: number } | null;
  /** The innermost top-level scope (server, else http, else the file's top level): gives `GatewayConfig`'s server-level settings. */
  top: ScopeDraft;
  locations: LocationDraft[];
  sampleBackend: { filesDir: string } | null;
  /** `upload_progress` zones by name. */
  progressZones: Map<string, ZoneDraft>;
  /** `upload_demo_page on|off` (null: not written, off). */
  demoPage: boolean | null;
}

export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 8080 } as const;

export function newScope(parent: ScopeDraft | null): ScopeDraft {
  return { settings: {}, written: new Map(), parent };
}

function chain(scope: ScopeDraft): Settings[] {
  const levels: Settings[] = [];
  for (let s: ScopeDraft | null = scope; s; s = s.parent) levels.unshift(s.settings);
  return levels;
}

export function describeLocation(location: Pick<LocationDraft, 'match' | 'path'>): string {
  return location.match === 'exact' ? `= ${location.path}` : location.path;
}

const SPEC_BY_KEY = new Map(SETTINGS.map((spec) => [spec.key, spec]));

interface ProxyTarget {
  draft: LocationDraft;
  url: BackendUrl;
}

/** Refuses a directive written in a location of a kind where it means nothing (`applies` false). */
function refuseWritten(location: LocationDraft, applies: (spec: SettingSpec) => boolean, kind: string): void {
  for (const [key, where] of location.scope.written) {
    const spec = SPEC_BY_KEY.get(key);
    if (spec && !applies(spec)) throw configError(where, `"${spec.directives[0]}" has no effect in a location ${kind}`);
  }
}

/** Checks a location that only proxies; it can serve only as an `upload_pass` target. */
function checkProxyLocation(location: LocationDraft, proxyPass: TargetDraft): BackendUrl {
  refuseWritten(location, (spec) => spec.proxyLocation, 'without "upload_pass"');
  const url = atWhere(proxyPass.where, () => parseBackendUrl(proxyPass.value, 'proxy_pass'));
  if (location.match === 'named' && url.path !== null) {
    // nginx refuses this too: a named location has no URI part to replace.
    throw configError(proxyPass.where, `"proxy_pass" cannot have a URI part inside a named location ("${proxyPass.value}")`);
  }
  return url;
}

/** Checks a progress location: only the progress directives (and `upload_state_redis`) mean something there. */
function checkProgressLocation(location: LocationDraft): void {
  refuseWritten(location, (spec) => spec.progressLocation || spec.key === 'stateRedis', 'with "report_uploads"');
}

/** Checks a metrics location: only the settings of served locations mean something there. */
function checkMetricsLocation(location: LocationDraft, metrics: Where): void {
  const other = location.uploadPass ? 'upload_pass' : location.proxyPass ? 'proxy_pass' : location.reportUploads ? 'report_uploads' : null;
  if (other) throw configError(metrics, `"upload_metrics" and "${other}" cannot be used in the same location`);
  if (location.match === 'named') throw configError(metrics, '"upload_metrics" is not supported in a named location');
  if (location.internal) throw configError(location.internal, '"internal" is not supported in a metrics location (it would be unreachable)');
  refuseWritten(location, (spec) => spec.metricsLocation, 'with "upload_metrics"');
}

/** nginx location matching among the proxy locations: an exact match first, then the longest prefix. */
function matchProxyLocation(uri: string, targets: readonly ProxyTarget[]): ProxyTarget | null {
  const exact = targets.find((t) => t.draft.match === 'exact' && t.draft.path === uri);
  if (exact) return exact;
  let best: ProxyTarget | null = null;
  for (const t of targets) {
    if (t.draft.match === 'prefix' && uri.startsWith(t.draft.path) && (!best || t.draft.path.length > best.draft.path.length)) {
      best = t;
    }
  }
  return best;
}

/** Resolves `upload_pass` (or `auth_request`) to where the request goes; also returns the target location, if any. */
function resolveUploadPass(
  target: TargetDraft,
  named: ReadonlyMap<string, ProxyTarget>,
  byUri: readonly ProxyTarget[],
  directive = 'upload_pass',
): { pass: UploadPass; via: LocationDraft | null } {
  const { value, where } = target;
  if (value.includes('$')) throw configError(where, `variables in ${directive} are not supported`);
  if (value.length === 0) throw configError(where, `empty value in "${directive}" directive`);
  if (/^https?:\/\//i.test(value)) {
    const url = atWhere(where, () => parseBackendUrl(value, directive));
    return { pass: { source: value, origin: url.origin, hostHeader: url.hostHeader, path: url.path }, via: null };
  }
  if (value.startsWith('@')) {
    const found = named.get(value);
    if (!found) throw configError(where, `upload_pass "${value}": no named location "${value}" with "proxy_pass"`);
    // The request keeps its URI through a named location: the client's request-target is forwarded.
    return { pass: { source: value, origin: found.url.origin, hostHeader: found.url.hostHeader, path: null }, via: found.draft };
  }
  if (value.startsWith('/')) {
    const found = matchProxyLocation(value, byUri);
    if (!found) throw configError(where, `${directive} "${value}": no location with "proxy_pass" matches it`);
    // proxy_pass with a URI replaces the part of the URI the location matched, as nginx does.
    const path = found.url.path === null ? value : found.url.path + value.slice(found.draft.path.length);
    return { pass: { source: value, origin: found.url.origin, hostHeader: found.url.hostHeader, path }, via: found.draft };
  }
  throw configError(where, `invalid ${directive} "${value}": expected an http:// or https:// URL, @name or /uri`);
}

function checkLocationPath(location: LocationDraft): void {
  if (location.match === 'named') {
    if (!/^@[^\s/]+$/.test(location.path)) throw configError(location.where, `invalid named location "${location.path}"`);
  } else if (!location.path.startsWith('/')) {
    throw configError(location.where, `location path "${location.path}" must start with "/"`);
  }
}

export function finalizeConfig(draft: ConfigDraft): GatewayConfig {
  const defaults = defaultSettings(draft.baseDir);
  const seen = new Set<string>();
  const named = new Map<string, ProxyTarget>();
  const byUri: ProxyTarget[] = [];
  const uploads: Array<LocationDraft & { uploadPass: TargetDraft }> = [];
  const reports: Array<LocationDraft & { reportUploads: TargetDraft }> = [];
  const metricsDrafts: LocationDraft[] = [];
  // auth_request /uri resolves through the proxy locations, as upload_pass /uri does.
  const resolveTarget = (target: TargetDraft, directive: string) => resolveUploadPass(target, named, byUri, directive);

  for (const location of draft.locations) {
    checkLocationPath(location);
    const identity = `${location.match} ${location.path}`;
    if (seen.has(identity)) throw configError(location.where, `duplicate location "${describeLocation(location)}"`);
    seen.add(identity);

    const { uploadPass, proxyPass, reportUploads } = location;
    if (location.metrics) {
      checkMetricsLocation(location, location.metrics);
      metricsDrafts.push(location);
      continue;
    }
    if (reportUploads) {
      const other = uploadPass ? 'upload_pass' : proxyPass ? 'proxy_pass' : null;
      if (other) throw configError(reportUploads.where, `"report_uploads" and "${other}" cannot be used in the same location`);
      if (location.match === 'named') throw configError(reportUploads.where, '"report_uploads" is not supported in a named location');
      if (location.internal) throw configError(location.internal, '"internal" is not supported in a progress location (it would be unreachable)');
      checkProgressLocation(location);
      reports.push({ ...location, reportUploads });
      continue;
    }
    if (uploadPass && proxyPass) {
      throw configError(proxyPass.where, '"proxy_pass" and "upload_pass" cannot be used in the same location');
    }
    if (uploadPass) {
      if (location.match === 'named') throw configError(uploadPass.where, '"upload_pass" is not supported in a named location');
      if (location.internal) {
        throw configError(location.internal, '"internal" is not supported in an upload location (it would be unreachable)');
      }
      uploads.push({ ...location, uploadPass });
    } else if (proxyPass) {
      const target = { draft: location, url: checkProxyLocation(location, proxyPass) };
      if (location.match === 'named') named.set(location.path, target);
      else byUri.push(target);
    } else {
      throw configError(
        location.where,
        `location "${describeLocation(location)}" has neither "upload_pass" nor "proxy_pass" (nor "report_uploads", "upload_metrics")`,
      );
    }
  }

  const locations = uploads.map((location): LocationConfig => {
    const { pass, via } = resolveUploadPass(location.uploadPass, named, byUri);
    // Server-level settings stay with the server (GatewayConfig).
    const merged = mergeSettings(defaults, ...chain(location.scope));
    const { clientHeaderTimeoutMs: _header, errorLog: _errorLog, shutdownTimeoutMs: _shutdown, authRequest: _auth, ...settings } = merged;
    // The location that proxies decides the backend timeouts when it sets them (as in nginx, where
    // the proxying happens there); otherwise the upload location's own (or inherited) values apply.
    if (via) {
      settings.backendConnectTimeoutMs = via.scope.settings.backendConnectTimeoutMs ?? settings.backendConnectTimeoutMs;
      settings.backendReadTimeoutMs = via.scope.settings.backendReadTimeoutMs ?? settings.backendReadTimeoutMs;
    }
    // tus and the IETF draft address each upload below the location (`<path>/<id>`).
    if (settings.tus && location.match === 'exact') {
      throw configError(location.where, `"upload_tus" needs a prefix location (upload URLs are ${location.path}/<id>), not "location = ${location.path}"`);
    }
    return {
      match: location.match as 'exact' | 'prefix',
      path: location.path,
      origin: describeWhere(location.where),
      uploadPass: pass,
      ...settings,
      ...servedSettings(location.scope, merged, resolveTarget),
    };
  });

  // Progress zones: every zone named by track_uploads / report_uploads exists; the locations using
  // one agree on where it lives (in process, or the Redis of their upload_state_redis).
  const zoneRedis = new Map<string, { url: string | null; where: Where }>();
  const useZone = (zone: string, where: Where, stateRedis: string | null, directive: string) => {
    if (!draft.progressZones.has(zone)) {
      throw configError(where, `${directive} "${zone}": zero size shared memory zone "${zone}" (no "upload_progress ${zone} SIZE;" at the top level)`);
    }
    const seen = zoneRedis.get(zone);
    if (!seen) zoneRedis.set(zone, { url: stateRedis, where });
    else if (seen.url !== stateRedis) {
      throw configError(where, `upload_progress zone "${zone}" is used with upload_state_redis ${stateRedis ?? 'off'} here and ${seen.url ?? 'off'} at ${describeWhere(seen.where)}: a zone lives in one place`);
    }
  };
  uploads.forEach((draftLocation, i) => {
    const track = locations[i].trackUploads;
    if (track) useZone(track.zone, writtenAt(draftLocation.scope, 'trackUploads') ?? draftLocation.where, locations[i].stateRedis, 'track_uploads');
  });
  const progressLocations = reports.map((location): ProgressLocationConfig => {
    const settings: FullSettings = mergeSettings(defaults, ...chain(location.scope));
    useZone(location.reportUploads.value, location.reportUploads.where, settings.stateRedis, 'report_uploads');
    return {
      match: location.match as 'exact' | 'prefix',
      path: location.path,
      origin: describeWhere(location.where),
      zone: location.reportUploads.value,
      header: settings.progressHeader,
      jsonpParameter: settings.progressJsonpParameter,
      contentType: settings.progressContentType,
      templates: settings.progressTemplates,
      sendTimeoutMs: settings.sendTimeoutMs,
      ...servedSettings(location.scope, settings, resolveTarget),
    };
  });
  const metricsLocations = metricsDrafts.map((location): MetricsLocationConfig => ({
    match: location.match as 'exact' | 'prefix',
    path: location.path,
    origin: describeWhere(location.where),
    ...servedSettings(location.scope, mergeSettings(defaults, ...chain(location.scope)), resolveTarget),
  }));
  const progressZones = [...draft.progressZones].map(([name, zone]): ProgressZoneConfig => ({
    name,
    size: zone.size,
    stateRedis: zoneRedis.get(name)?.url ?? null,
    origin: describeWhere(zone.where),
  }));

  const server = mergeSettings(defaults, ...chain(draft.top));
  return {
    source: draft.source,
    listen: draft.listen ?? { ...DEFAULT_LISTEN },
    clientMaxBodySize: server.clientMaxBodySize,
    clientHeaderTimeoutMs: server.clientHeaderTimeoutMs,
    sendTimeoutMs: server.sendTimeoutMs,
    locations,
    sampleBackend: draft.sampleBackend,
    progressZones,
    progressLocations,
    demoPage: draft.demoPage ?? false,
    metricsLocations,
    access: server.access,
    accessLog: server.accessLog,
    errorLog: server.errorLog,
    shutdownTimeoutMs: server.shutdownTimeoutMs,
  };
}
