/**
 * Programmatic configuration: a plain object with camelCase names mirroring the directives. It is
 * checked with zod for its shape, then every value goes through the same parsers, checks, defaults
 * and inheritance as the configuration file (the setting table and `finalizeConfig`).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { atWhere, configError, ConfigError, type Where } from './errors';
import { finalizeConfig, newScope, type ConfigDraft, type LocationDraft, type ScopeDraft } from './finalize';
import { SETTINGS } from './settings';
import type { GatewayConfig } from './types';
import { parseListen } from './values';
import { parseSize } from './units';
import { MIN_PROGRESS_ZONE } from './parse';
import { OUTPUT_CONTENT_TYPES, outputTemplates, type ProgressOutput } from '../protocol/upload-progress';

/** A size: bytes, or an nginx size string (`"10k"`, `"8m"`, `"1g"`). */
export type SizeInput = number | string;
/** A time: milliseconds, or an nginx time string (`"500ms"`, `"30s"`, `"1h30m"`). */
export type TimeInput = number | string;
/** A store directory (no hash levels), or a directory with levels (each 1 or 2, at most 3). */
export type StoreInput = string | { dir: string; levels?: number[] };
export interface NameValueInput {
  name: string;
  value: string;
}

/** The settings a location can have and inherit; each mirrors the directive in the comment. */
export interface SettingsInput {
  /** upload_resumable */
  resumable?: boolean;
  /** upload_store */
  store?: StoreInput;
  /** upload_state_store */
  stateStore?: StoreInput;
  /** upload_store_access: a mode (0o640) or nginx access text (`"user:rw group:r"`). */
  storeAccess?: number | string | string[];
  /** upload_set_form_field, in order. */
  setFormFields?: NameValueInput[];
  /** upload_aggregate_form_field, in order. */
  aggregateFormFields?: NameValueInput[];
  /** upload_pass_form_field (JavaScript RegExp sources, D5). */
  passFormFields?: string[];
  /** upload_cleanup: `"400 404 500-505"` or `[400, 404, "500-505"]`. */
  cleanup?: string | Array<number | string>;
  /** upload_buffer_size */
  bufferSize?: SizeInput;
  /** upload_max_part_header_len */
  maxPartHeaderLen?: SizeInput;
  /** upload_max_file_size */
  maxFileSize?: SizeInput;
  /** upload_max_output_body_len */
  maxOutputBodyLen?: SizeInput;
  /** upload_limit_rate */
  limitRate?: SizeInput;
  /** upload_tame_arrays */
  tameArrays?: boolean;
  /** upload_pass_args */
  passArgs?: boolean;
  /** upload_add_header, in order. */
  addHeaders?: NameValueInput[];
  /** upload_empty_fiels_names / upload_empty_field_names */
  emptyFieldNames?: boolean;
  /** upload_merge_buffer_size */
  mergeBufferSize?: SizeInput;
  /** upload_range_header_buffer_size */
  rangeHeaderBufferSize?: SizeInput;
  /** client_max_body_size */
  clientMaxBodySize?: SizeInput;
  /** client_body_timeout */
  clientBodyTimeout?: TimeInput;
  /** send_timeout */
  sendTimeout?: TimeInput;
  /** upload_fsync */
  fsync?: boolean;
  /** upload_tus */
  tus?: boolean;
  /** upload_session_timeout */
  sessionTimeout?: TimeInput;
  /** upload_completed_retention */
  completedRetention?: TimeInput;
  /** upload_session_id_max_length */
  sessionIdMaxLength?: number;
  /** upload_state_redis: `redis://host:6379/0`, or null (`off`) */
  stateRedis?: string | null;
  /** proxy_connect_timeout */
  proxyConnectTimeout?: TimeInput;
  /** proxy_read_timeout */
  proxyReadTimeout?: TimeInput;
  /** track_uploads ZONE TIMEOUT, or null (not tracked) */
  trackUploads?: { zone: string; timeout: TimeInput } | null;
  /** upload_progress_header (default X-Progress-ID) */
  progressHeader?: string;
  /** upload_progress_jsonp_parameter (default callback) */
  progressJsonpParameter?: string;
  /**
   * upload_progress_json_output / _jsonp_output / _java_output: the four templates and the content
   * type of that set; `progressTemplates` and `progressContentType` of the same object override it.
   */
  progressOutput?: ProgressOutput;
  /** upload_progress_content_type */
  progressContentType?: string;
  /** upload_progress_template, per state (`starting`, `uploading`, `done`, `error`, or `st`, `up`, `do`, `er`) */
  progressTemplates?: Partial<Record<string, string>>;
  /** allow / deny, in order: `["allow 10.0.0.0/8", "deny all"]` */
  access?: string[];
  /** auth_request: `/uri` (a location with proxy_pass) or an http:// URL; null: off */
  authRequest?: string | null;
  /** auth_request_cache TIME [HEADER …]: a time, or `{ time, headers }`; null: off */
  authRequestCache?: TimeInput | { time: TimeInput; headers?: string[] } | null;
  /** access_log FILE; null: off */
  accessLog?: string | null;
  /** cors_allow_origin */
  corsAllowOrigins?: string[];
  /** cors_allow_headers */
  corsAllowHeaders?: string[];
  /** cors_expose_headers */
  corsExposeHeaders?: string[];
  /** cors_allow_credentials */
  corsAllowCredentials?: boolean;
  /** cors_max_age */
  corsMaxAge?: TimeInput;
}

/** The settings of a location the gateway serves, for a metrics or progress location. */
export type ServedSettingsInput = Pick<
  SettingsInput,
  'access' | 'authRequest' | 'authRequestCache' | 'accessLog' | 'corsAllowOrigins' | 'corsAllowHeaders' | 'corsExposeHeaders' | 'corsAllowCredentials' | 'corsMaxAge'
>;

/** A metrics location (`location … { upload_metrics; }`). */
export interface MetricsLocationInput extends ServedSettingsInput {
  match?: 'exact' | 'prefix';
  path: string;
}

/** A progress location (`location … { report_uploads ZONE; }`): only the progress settings apply. */
export interface ProgressLocationInput extends ServedSettingsInput {
  match?: 'exact' | 'prefix';
  path: string;
  /** report_uploads ZONE */
  reportUploads: string;
  progressHeader?: string;
  progressJsonpParameter?: string;
  progressOutput?: ProgressOutput;
  progressContentType?: string;
  progressTemplates?: Partial<Record<string, string>>;
  stateRedis?: string | null;
  sendTimeout?: TimeInput;
}

export interface LocationInput extends SettingsInput {
  /** `location = /path` (exact) or `location /path` (prefix, the default). */
  match?: 'exact' | 'prefix';
  path: string;
  /** upload_pass: an absolute `http://` or `https://` URL (without a path: the client's request-target is forwarded). */
  uploadPass: string;
}

export interface GatewayConfigInput extends SettingsInput {
  /** listen: `"127.0.0.1:8080"`, `"[::1]:8080"`, `8080` (every address, as nginx) or `{ host, port }`. Default 127.0.0.1:8080. */
  listen?: string | number | { host: string; port: number };
  /** client_header_timeout (top level only, as nginx's http/server contexts) */
  clientHeaderTimeout?: TimeInput;
  locations?: LocationInput[];
  /** The built-in sample backend (see `embeddedDefaults`); `filesDir` is relative to `baseDir`. */
  sampleBackend?: { filesDir: string } | null;
  /** upload_progress NAME SIZE, as `{ NAME: SIZE }` */
  progressZones?: Record<string, SizeInput>;
  /** Locations with report_uploads. */
  progressLocations?: ProgressLocationInput[];
  /** upload_demo_page */
  demoPage?: boolean;
  /** Locations with upload_metrics. */
  metricsLocations?: MetricsLocationInput[];
  /** error_log FILE|stderr [LEVEL]: a file, or `{ file, level }` */
  errorLog?: string | { file: string; level?: string };
  /** worker_shutdown_timeout */
  workerShutdownTimeout?: TimeInput;
}

const SOURCE = '<object>';

const progressOutput = z.enum(['json', 'jsonp', 'java'], { error: 'expected "json", "jsonp" or "java"' }).optional();
const shapeOf = (specs: typeof SETTINGS) => ({
  ...Object.fromEntries(specs.map((spec) => [spec.inputKey, spec.input.optional()])),
  progressOutput,
});
const topShape = shapeOf(SETTINGS);
const settingsShape = shapeOf(SETTINGS.filter((spec) => !spec.serverOnly));
const progressShape = shapeOf(SETTINGS.filter((spec) => spec.progressLocation || spec.key === 'stateRedis'));
const { progressOutput: _output, ...metricsShape } = shapeOf(SETTINGS.filter((spec) => spec.metricsLocation));

const metricsLocationSchema = z.strictObject({
  match: z.enum(['exact', 'prefix'], { error: 'expected "exact" or "prefix"' }).optional(),
  path: z.string({ error: 'expected the location path as a string' }),
  ...metricsShape,
});

const progressLocationSchema = z.strictObject({
  match: z.enum(['exact', 'prefix'], { error: 'expected "exact" or "prefix"' }).optional(),
  path: z.string({ error: 'expected the location path as a string' }),
  reportUploads: z.string({ error: 'expected the zone name' }),
  ...progressShape,
});

const locationSchema = z.strictObject({
  match: z.enum(['exact', 'prefix'], { error: 'expected "exact" or "prefix"' }).optional(),
  path: z.string({ error: 'expected the location path as a string' }),
  uploadPass: z.string({ error: 'expected an absolute http:// or https:// URL' }),
  ...settingsShape,
});

const configSchema = z.strictObject({
  listen: z
    .union([z.string(), z.number(), z.strictObject({ host: z.string(), port: z.number() })], {
      error: 'expected "host:port", a port number, or { host, port }',
    })
    .optional(),
  locations: z.array(locationSchema, { error: 'expected an array of locations' }).optional(),
  sampleBackend: z.union([z.null(), z.strictObject({ filesDir: z.string() })]).optional(),
  progressZones: z.record(z.string(), z.union([z.number(), z.string()]), { error: 'expected { NAME: SIZE }' }).optional(),
  progressLocations: z.array(progressLocationSchema, { error: 'expected an array of progress locations' }).optional(),
  metricsLocations: z.array(metricsLocationSchema, { error: 'expected an array of metrics locations' }).optional(),
  demoPage: z.boolean({ error: 'expected true or false' }).optional(),
  ...topShape,
});

function formatPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of parts) {
    out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  }
  return out;
}

function settingsFromInput(input: Record<string, unknown>, keyPrefix: string, scope: ScopeDraft, baseDir: string): void {
  for (const spec of SETTINGS) {
    const raw = input[spec.inputKey];
    if (raw === undefined) continue;
    const where: Where = { file: SOURCE, line: 0, key: `${keyPrefix}${spec.inputKey}` };
    (scope.settings as Record<string, unknown>)[spec.key] = atWhere(where, () => spec.fromInput(raw, { baseDir }));
    scope.written.set(spec.key, where);
  }
  const output = input.progressOutput as ProgressOutput | undefined;
  if (output !== undefined) {
    // As the output directive written first: the object's own templates and content type win.
    const where: Where = { file: SOURCE, line: 0, key: `${keyPrefix}progressOutput` };
    scope.settings.progressTemplates = { ...outputTemplates(output), ...scope.settings.progressTemplates };
    scope.settings.progressContentType ??= OUTPUT_CONTENT_TYPES[output];
    if (!scope.written.has('progressTemplates')) scope.written.set('progressTemplates', where);
    if (!scope.written.has('progressContentType')) scope.written.set('progressContentType', where);
  }
}

function listenFromInput(listen: NonNullable<GatewayConfigInput['listen']>): { host: string; port: number } {
  const text =
    typeof listen === 'object'
      ? `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`
      : String(listen);
  return atWhere({ file: SOURCE, line: 0, key: 'listen' }, () => parseListen(text));
}

/**
 * Builds a `GatewayConfig` from a plain object, with the defaults and checks of the configuration
 * file; relative paths are resolved against `baseDir`. Throws `ConfigError` (`<object>: key: reason`).
 */
export function resolveConfig(input: GatewayConfigInput, baseDir: string = process.cwd()): GatewayConfig {
  const checked = configSchema.safeParse(input);
  if (!checked.success) {
    const reasons = checked.error.issues.map((issue) => {
      const key = formatPath(issue.path);
      return key ? `${key}: ${issue.message}` : issue.message;
    });
    throw new ConfigError(SOURCE, 0, reasons.join('; '));
  }
  const value = checked.data as GatewayConfigInput & Record<string, unknown>;
  const root = path.resolve(baseDir);

  const top = newScope(null);
  settingsFromInput(value, '', top, root);

  const locations = (value.locations ?? []).map((location, index): LocationDraft => {
    const key = `locations[${index}]`;
    const where: Where = { file: SOURCE, line: 0, key };
    const passWhere: Where = { ...where, key: `${key}.uploadPass` };
    if (!/^https?:\/\//i.test(location.uploadPass)) {
      throw configError(passWhere, `must be an absolute http:// or https:// URL (got "${location.uploadPass}")`);
    }
    const scope = newScope(top);
    settingsFromInput(location as unknown as Record<string, unknown>, `${key}.`, scope, root);
    return {
      match: location.match ?? 'prefix',
      path: location.path,
      where,
      scope,
      uploadPass: { value: location.uploadPass, where: passWhere },
      proxyPass: null,
      internal: null,
      reportUploads: null,
    };
  });
  (value.progressLocations ?? []).forEach((location, index) => {
    const key = `progressLocations[${index}]`;
    const where: Where = { file: SOURCE, line: 0, key };
    const scope = newScope(top);
    settingsFromInput(location as unknown as Record<string, unknown>, `${key}.`, scope, root);
    locations.push({
      match: location.match ?? 'prefix',
      path: location.path,
      where,
      scope,
      uploadPass: null,
      proxyPass: null,
      internal: null,
      reportUploads: { value: location.reportUploads, where: { ...where, key: `${key}.reportUploads` } },
    });
  });
  (value.metricsLocations ?? []).forEach((location, index) => {
    const key = `metricsLocations[${index}]`;
    const where: Where = { file: SOURCE, line: 0, key };
    const scope = newScope(top);
    settingsFromInput(location as unknown as Record<string, unknown>, `${key}.`, scope, root);
    locations.push({ match: location.match ?? 'prefix', path: location.path, where, scope, uploadPass: null, proxyPass: null, internal: null, reportUploads: null, metrics: where });
  });
  const progressZones = new Map<string, { size: number; where: Where }>();
  for (const [name, size] of Object.entries(value.progressZones ?? {})) {
    const where: Where = { file: SOURCE, line: 0, key: `progressZones.${name}` };
    const bytes = atWhere(where, () => (typeof size === 'number' ? size : parseSize(size)));
    if (!Number.isSafeInteger(bytes) || bytes < MIN_PROGRESS_ZONE) throw configError(where, `upload_progress "${name}" is too small (${size}): at least 32k`);
    progressZones.set(name, { size: bytes, where });
  }

  const draft: ConfigDraft = {
    source: SOURCE,
    baseDir: root,
    listen: value.listen === undefined ? null : listenFromInput(value.listen),
    top,
    locations,
    sampleBackend: value.sampleBackend ? { filesDir: path.resolve(root, value.sampleBackend.filesDir) } : null,
    progressZones,
    demoPage: value.demoPage ?? null,
  };
  return finalizeConfig(draft);
}
