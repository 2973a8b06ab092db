/**
 * The gateway's resolved configuration. Produced by `parseConfig` (nginx-style text) or
 * `resolveConfig` (a programmatic object); consumed by `createGateway`. Every value here is
 * final: defaults applied, sizes in bytes, times in milliseconds, templates parsed.
 */

import type { Template } from '../protocol/templates';
import type { ProgressTemplates } from '../protocol/upload-progress';

export type { Template, TemplatePart } from '../protocol/templates';
export type { ProgressState, ProgressTemplates } from '../protocol/upload-progress';

/** `upload_set_form_field`, `upload_aggregate_form_field`, `upload_add_header`. */
export interface NameValueTemplate {
  name: Template;
  value: Template;
}

/** `upload_store dir [l1 [l2 [l3]]]` / `upload_state_store …`. */
export interface StorePath {
  /** Absolute directory, trailing `/` removed. */
  dir: string;
  /** Hash levels, each 1..2 (nginx allows 1 or 2 per level), at most 3 levels. */
  levels: number[];
}

/**
 * Where a completed upload is handed. `upload_pass http://host:port` (no path) and
 * `upload_pass @named` (whose `proxy_pass` has no path) forward the client's original
 * request-target: `path` is null. A URL with a path, or `upload_pass /internal` resolved through
 * a location's `proxy_pass`, gives a fixed path; the client's query is appended only under
 * `upload_pass_args on`.
 */
export interface UploadPass {
  /** As written in the file, for messages. */
  source: string;
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  /** The `Host` header nginx's proxy would send: host, plus `:port` unless default. */
  hostHeader: string;
  path: string | null;
}

export interface LocationConfig extends ServedLocationSettings {
  /** `location = /x` is exact, `location /x` is a prefix. */
  match: 'exact' | 'prefix';
  path: string;
  /** Where it was defined, for messages (`file:line`). */
  origin: string;

  uploadPass: UploadPass;
  resumable: boolean;
  store: StorePath;
  stateStore: StorePath;
  /**
   * `upload_state_redis redis://host:6379/0` (gateway extension): session state and locks in Redis,
   * shared by several gateway instances; null (`off`, the default) keeps them in `stateStore`.
   */
  stateRedis: string | null;
  /** File mode for data (and state) files, from `upload_store_access` (default 0o600). */
  storeAccess: number;
  setFormFields: NameValueTemplate[];
  aggregateFormFields: NameValueTemplate[];
  /** `upload_pass_form_field` patterns (JavaScript RegExp source, D5). */
  passFormFields: string[];
  /** `upload_cleanup` as inclusive status ranges. */
  cleanup: Array<[number, number]>;
  addHeaders: NameValueTemplate[];
  bufferSize: number;
  maxPartHeaderLen: number;
  /** 0 = unlimited. */
  maxFileSize: number;
  /** 0 = unlimited. */
  maxOutputBodyLen: number;
  /** Bytes per second, 0 = unlimited. */
  limitRate: number;
  tameArrays: boolean;
  passArgs: boolean;
  emptyFieldNames: boolean;
  mergeBufferSize: number;
  rangeHeaderBufferSize: number;
  /** `client_max_body_size` in effect for this location (inherited from the top level), 0 = unlimited. */
  clientMaxBodySize: number;
  /** `client_body_timeout`: the longest wait for more body bytes of a request (then 408). */
  clientBodyTimeoutMs: number;
  /** `send_timeout`: the longest wait for the client to take more of an answer (then the connection closes). */
  sendTimeoutMs: number;

  // Gateway extensions (not in the module).
  /** `upload_tus on|off`: tus 1.0 and the IETF resumable-upload draft on this (prefix) location, default off. */
  tus: boolean;
  /** `upload_fsync on|off` (D23), default on. */
  fsync: boolean;
  /** `upload_session_timeout` — an incomplete session idle this long is removed (data and state). */
  sessionTimeoutMs: number;
  /** `upload_completed_retention` — how long a completed session's answer is replayed (D7, D9). */
  completedRetentionMs: number;
  /** `upload_session_id_max_length` (D10), default 200. */
  sessionIdMaxLength: number;
  /** `proxy_connect_timeout`, default 60s. */
  backendConnectTimeoutMs: number;
  /** `proxy_read_timeout`, default 60s. */
  backendReadTimeoutMs: number;

  // nginx-upload-progress-module directives (spec upload-progress-module.md §2).
  /** `track_uploads ZONE TIMEOUT`: POSTs with a progress id are tracked in ZONE; finished entries stay TIMEOUT. Null: not tracked. */
  trackUploads: TrackUploads | null;
  /** `upload_progress_header`: name of the progress id header and query argument (default `X-Progress-ID`). */
  progressHeader: string;
  /** `upload_progress_jsonp_parameter`: query argument holding the JSONP callback (default `callback`). */
  progressJsonpParameter: string;
  /** `upload_progress_content_type` (or the one an output directive sets); default `text/javascript`. */
  progressContentType: string;
  /** The four templates (`upload_progress_template`, output directives); each inherited on its own, default JSONP. */
  progressTemplates: ProgressTemplates;
}

/** Settings of the server itself: nginx's http and server levels, never a location. */
export interface ServerSettings {
  /** `client_header_timeout`: a request head must be complete this long after its first byte (then 408). */
  clientHeaderTimeoutMs: number;
  /** `error_log FILE|stderr [LEVEL]`: where the gateway's own log goes; null: stdout at `LOG_LEVEL` (default info). */
  errorLog: ErrorLog | null;
  /** `worker_shutdown_timeout`: how long a graceful stop lets requests in flight finish. */
  shutdownTimeoutMs: number;
}

/** `error_log FILE|stderr [LEVEL]`. */
export interface ErrorLog {
  /** An absolute path, or `stderr`. */
  file: string;
  /** nginx's level names mapped to the logger's: debug, info (info, notice), warn, error, fatal (crit, alert, emerg). */
  level: 'debug' | 'info' | 'warn' | 'error' | 'fatal';
}

/** One `allow` or `deny` rule (nginx's access module): an address, a CIDR block or `all`. */
export interface AccessRule {
  allow: boolean;
  /** As written (`10.0.0.0/8`, `::1`, `all`). */
  source: string;
  /** `all` matches every client; otherwise the block's family, network address and prefix length. */
  family: 'all' | 'ipv4' | 'ipv6';
  address: string;
  prefix: number;
}

/** `auth_request URI|URL`, resolved: where the sub-request goes (as `upload_pass` is resolved). */
export interface AuthRequest {
  /** As written. */
  source: string;
  origin: string;
  hostHeader: string;
  path: string;
  connectTimeoutMs: number;
  readTimeoutMs: number;
}

/** `auth_request_cache TIME [HEADER …]`. */
export interface AuthRequestCache {
  /** How long an allowing answer is reused. */
  timeMs: number;
  /** The request headers that make up the credentials (lower case); empty: every header but the per-segment ones. */
  headers: string[];
}

/**
 * nginx's access phase, logging and CORS: what every location the gateway serves has (upload,
 * progress and metrics locations), inherited from the top level like any setting.
 */
export interface ServedLocationSettings {
  /** `allow` / `deny` in order (the first matching rule decides); empty: every client. */
  access: AccessRule[];
  /** `auth_request`; null (`off`, the default): no sub-request. */
  authRequest: AuthRequest | null;
  /** `auth_request_cache`; null (the default): every request asks. */
  authRequestCache: AuthRequestCache | null;
  /** `access_log FILE`: one JSON line per request; null (`off`, the default): none. */
  accessLog: string | null;
  /** `cors_allow_origin`: origins whose pages may use the location (`*`: any); empty: no CORS headers. */
  corsAllowOrigins: string[];
  /** `cors_allow_headers`: request headers allowed besides the protocol's. */
  corsAllowHeaders: string[];
  /** `cors_expose_headers`: response headers exposed besides the protocol's (e.g. the backend's). */
  corsExposeHeaders: string[];
  /** `cors_allow_credentials on|off`. */
  corsAllowCredentials: boolean;
  /** `cors_max_age`: how long a browser may cache a preflight answer. */
  corsMaxAgeMs: number;
}

/** A location with `upload_metrics`: the Prometheus exposition of this instance. */
export interface MetricsLocationConfig extends ServedLocationSettings {
  match: 'exact' | 'prefix';
  path: string;
  origin: string;
}

/** `track_uploads ZONE TIMEOUT`. */
export interface TrackUploads {
  zone: string;
  /** How long a finished entry stays visible (the module: at least this, at most ~15 s more, P9). */
  timeoutMs: number;
}


/** `upload_progress NAME SIZE` (top level): a zone that tracked uploads are registered in. */
export interface ProgressZoneConfig {
  name: string;
  /** Bytes; entries cost ~128 bytes plus their id (in-process zones refuse new uploads with 503 when full). */
  size: number;
  /** Where the zone lives: in process (null), or in this Redis (the `upload_state_redis` of the locations using it). */
  stateRedis: string | null;
  /** `file:line` of the directive. */
  origin: string;
}

/** A location with `report_uploads ZONE`: the progress endpoint (polling and Server-Sent Events). */
export interface ProgressLocationConfig extends ServedLocationSettings {
  match: 'exact' | 'prefix';
  path: string;
  origin: string;
  zone: string;
  header: string;
  jsonpParameter: string;
  contentType: string;
  templates: ProgressTemplates;
  /** `send_timeout` of the location (event streams to a client that stopped reading end). */
  sendTimeoutMs: number;
}

export interface GatewayConfig {
  /** Config file path or `<defaults>` / `<object>`. */
  source: string;
  listen: { host: string; port: number };
  /** `client_max_body_size`, 0 = unlimited; default 1m as nginx. */
  clientMaxBodySize: number;
  /** `client_header_timeout` (default 60s as nginx). */
  clientHeaderTimeoutMs: number;
  /** `send_timeout` of the top level: answers outside the upload and progress locations (default 60s). */
  sendTimeoutMs: number;
  /** Upload locations, in file order. Named and proxy-only locations are resolved away. */
  locations: LocationConfig[];
  /** Built-in sample backend (embedded defaults only): completed files are moved here and served at `/files/<name>`. */
  sampleBackend: { filesDir: string } | null;
  /** `upload_progress NAME SIZE` zones. */
  progressZones: ProgressZoneConfig[];
  /** `report_uploads` locations, in file order. */
  progressLocations: ProgressLocationConfig[];
  /** `upload_demo_page on|off` (top level): the upload page at `/` (default off; on in the embedded defaults). */
  demoPage: boolean;
  /** `upload_metrics` locations, in file order. */
  metricsLocations: MetricsLocationConfig[];
  /** `allow`/`deny` of the top level: for what no location serves (`/healthz`, the upload page, 404s). */
  access: AccessRule[];
  /** `access_log` of the top level: for what no location serves. */
  accessLog: string | null;
  /** `error_log` (null: stdout at `LOG_LEVEL`). */
  errorLog: ErrorLog | null;
  /** `worker_shutdown_timeout`. */
  shutdownTimeoutMs: number;
}
