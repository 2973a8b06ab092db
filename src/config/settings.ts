/**
 * The inheritable settings: one table that says, for each setting, its directive(s), its key in a
 * programmatic configuration object, how many arguments it takes, how its value is parsed and
 * checked, and its default. The file parser and `resolveConfig` both go through this table, so a
 * value is accepted or refused the same way whatever the form of the configuration.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { ValueError } from './errors';
import { compileTemplate, type TemplateContext } from '../protocol/templates';
import type { LocationConfig, NameValueTemplate, ProgressState, ProgressTemplates, ServerSettings, TrackUploads } from './types';
import {
  DEFAULT_JSONP_PARAMETER,
  DEFAULT_PROGRESS_CONTENT_TYPE,
  DEFAULT_PROGRESS_HEADER,
  outputTemplates,
  parseProgressStateName,
} from '../protocol/upload-progress';
import { parseSize, parseTime, formatSize, formatTime } from './units';
import {
  checkFileMode,
  checkIntegerRange,
  checkRegex,
  parseAccess,
  parseCleanupCode,
  parseFlag,
  parseInteger,
  parseStorePath,
  redisUrlProblem,
} from './values';
import {
  accessLogValue,
  accessRuleFromText,
  authRequestCacheValue,
  authRequestValue,
  corsOriginValue,
  errorLogValue,
  headerName,
  parseAccessRule,
} from './operations';

/** Everything a location can inherit: all of `LocationConfig` except what identifies the location and its targets. */
export type LocationSettingKey = Exclude<keyof LocationConfig, 'match' | 'path' | 'origin' | 'uploadPass' | 'authRequest'>;
/** Settings kept as written until the whole configuration is read (their targets are locations). */
export interface WrittenSettings {
  /** `auth_request /uri|URL`, resolved like `upload_pass` into `LocationConfig.authRequest`. */
  authRequest: string | null;
}
/** The location settings and the server-level ones (`SettingSpec.serverOnly`). */
export type SettingKey = LocationSettingKey | keyof ServerSettings | keyof WrittenSettings;
export type FullSettings = Pick<LocationConfig, LocationSettingKey> & ServerSettings & WrittenSettings;
/** The settings written at one level (top level, http, server, location). */
export type Settings = Partial<FullSettings>;

export interface ValueContext {
  /** Directory relative paths are resolved against (the config file's directory). */
  baseDir: string;
  /** The directive as written, when several share a setting (`allow`, `deny`). */
  directive?: string;
}

export interface SettingSpec {
  key: SettingKey;
  /** Directive names; the first is the one used in messages. */
  directives: readonly string[];
  /** Key in a `resolveConfig` object. */
  inputKey: string;
  /** Repeatable directive: each occurrence appends; the whole list is inherited only when a level has none. */
  repeatable: boolean;
  minArgs: number;
  maxArgs: number;
  /** Also meaningful in a location that only proxies (`proxy_pass`). */
  proxyLocation: boolean;
  /** Meaningful in a progress location (`report_uploads`). */
  progressLocation: boolean;
  /** Meaningful in a metrics location (`upload_metrics`). */
  metricsLocation: boolean;
  /** Only at the top level (nginx's http and server contexts), never in a location. */
  serverOnly: boolean;
  /** Value of one occurrence (for a repeatable setting: the elements it appends). */
  fromArgs(args: string[], ctx: ValueContext): unknown;
  /** Shape accepted in a configuration object. */
  input: z.ZodType;
  /** Value from a configuration object value that passed `input`. */
  fromInput(value: unknown, ctx: ValueContext): unknown;
}

interface TypedSpec<K extends SettingKey, I> {
  key: K;
  directives: readonly string[];
  inputKey: string;
  repeatable?: boolean;
  minArgs: number;
  maxArgs: number;
  proxyLocation?: boolean;
  progressLocation?: boolean;
  metricsLocation?: boolean;
  serverOnly?: boolean;
  fromArgs(args: string[], ctx: ValueContext): FullSettings[K];
  input: z.ZodType<I>;
  fromInput(value: I, ctx: ValueContext): FullSettings[K];
}

function define<K extends SettingKey, I>(spec: TypedSpec<K, I>): SettingSpec {
  return {
    ...spec,
    repeatable: spec.repeatable ?? false,
    proxyLocation: spec.proxyLocation ?? false,
    progressLocation: spec.progressLocation ?? false,
    metricsLocation: spec.metricsLocation ?? false,
    serverOnly: spec.serverOnly ?? false,
    fromInput: spec.fromInput as (value: unknown, ctx: ValueContext) => unknown,
  };
}

const SIZE_EXPECTED = 'expected a size: a whole number of bytes, or an nginx size string such as "512", "10k", "8m", "1g"';
const TIME_EXPECTED = 'expected a time: a whole number of milliseconds, or an nginx time string such as "500ms", "30s", "1h30m"';
const sizeInput = z.union([z.number().int({ error: SIZE_EXPECTED }).nonnegative({ error: SIZE_EXPECTED }), z.string()], {
  error: SIZE_EXPECTED,
});
const timeInput = z.union([z.number().int({ error: TIME_EXPECTED }).nonnegative({ error: TIME_EXPECTED }), z.string()], {
  error: TIME_EXPECTED,
});
const nameValueInput = z.array(z.strictObject({ name: z.string(), value: z.string() }), {
  error: 'expected an array of { name, value } objects',
});

/** Where a setting may also (`proxyLocation`, `progressLocation`, `metricsLocation`) or only (`serverOnly`) be written. */
type Contexts = Pick<TypedSpec<SettingKey, unknown>, 'proxyLocation' | 'progressLocation' | 'metricsLocation' | 'serverOnly'>;

function flag<K extends SettingKey>(key: K, directives: readonly string[], inputKey: string, contexts: Contexts = {}): SettingSpec {
  return define<K, boolean>({
    key,
    directives,
    inputKey,
    minArgs: 1,
    maxArgs: 1,
    ...contexts,
    fromArgs: ([value]) => parseFlag(value, directives[0]) as FullSettings[K],
    input: z.boolean({ error: 'expected true or false' }),
    fromInput: (value) => value as FullSettings[K],
  });
}

function checkMin(value: number, min: number, directive: string, format: (n: number) => string): number {
  if (value < min) throw new ValueError(`"${directive}" must be at least ${format(min)} (got ${format(value)})`);
  return value;
}

function size<K extends SettingKey>(key: K, directive: string, inputKey: string, min: number, proxyLocation = false): SettingSpec {
  const check = (bytes: number): FullSettings[K] => checkMin(bytes, min, directive, formatSize) as FullSettings[K];
  return define<K, number | string>({
    key,
    directives: [directive],
    inputKey,
    minArgs: 1,
    maxArgs: 1,
    proxyLocation,
    fromArgs: ([value]) => check(parseSize(value)),
    input: sizeInput,
    fromInput: (value) => check(typeof value === 'number' ? value : parseSize(value)),
  });
}

/** A one-string directive of a progress (`report_uploads`) location, checked by `check`. */
function progressText<K extends 'progressHeader' | 'progressJsonpParameter' | 'progressContentType'>(
  key: K,
  directive: string,
  inputError: string,
  check: (value: string, directive: string) => string,
): SettingSpec {
  return define<K, string>({
    key,
    directives: [directive],
    inputKey: key,
    minArgs: 1,
    maxArgs: 1,
    progressLocation: true,
    fromArgs: ([value]) => check(value, directive) as FullSettings[K],
    input: z.string({ error: inputError }),
    fromInput: (value) => check(value, directive) as FullSettings[K],
  });
}

function time<K extends SettingKey>(key: K, directive: string, inputKey: string, min: number, contexts: Contexts = {}): SettingSpec {
  const check = (ms: number): FullSettings[K] => checkMin(ms, min, directive, formatTime) as FullSettings[K];
  return define<K, number | string>({
    key,
    directives: [directive],
    inputKey,
    minArgs: 1,
    maxArgs: 1,
    ...contexts,
    fromArgs: ([value]) => check(parseTime(value)),
    input: timeInput,
    fromInput: (value) => check(typeof value === 'number' ? value : parseTime(value)),
  });
}

function nameValues<K extends 'setFormFields' | 'aggregateFormFields' | 'addHeaders'>(
  key: K,
  directive: TemplateContext,
  inputKey: string,
): SettingSpec {
  const compile = (name: string, value: string): NameValueTemplate => ({
    name: compileTemplate(name, directive),
    value: compileTemplate(value, directive),
  });
  return define<K, Array<{ name: string; value: string }>>({
    key,
    directives: [directive],
    inputKey,
    repeatable: true,
    minArgs: 2,
    maxArgs: 2,
    fromArgs: ([name, value]) => [compile(name, value)],
    input: nameValueInput,
    fromInput: (list) => list.map(({ name, value }) => compile(name, value)),
  });
}

function store<K extends 'store' | 'stateStore'>(key: K, directive: string, inputKey: string): SettingSpec {
  return define<K, string | { dir: string; levels?: number[] }>({
    key,
    directives: [directive],
    inputKey,
    minArgs: 1,
    maxArgs: 4,
    fromArgs: ([dir, ...levels], ctx) => parseStorePath(dir, levels, ctx.baseDir, directive),
    input: z.union([z.string(), z.strictObject({ dir: z.string(), levels: z.array(z.number()).optional() })], {
      error: 'expected a directory, or { dir, levels }',
    }),
    fromInput: (value, ctx) =>
      typeof value === 'string'
        ? parseStorePath(value, [], ctx.baseDir, directive)
        : parseStorePath(value.dir, value.levels ?? [], ctx.baseDir, directive),
  });
}

/** The operations settings are meaningful in progress and metrics locations too. */
const SERVED: Contexts = { progressLocation: true, metricsLocation: true };

/** A repeatable directive of names (`cors_allow_origin ORIGIN …`), each checked by `check`. */
function names<K extends 'corsAllowOrigins' | 'corsAllowHeaders' | 'corsExposeHeaders'>(key: K, directive: string, check: (value: string, directive: string) => string): SettingSpec {
  return define<K, string[]>({
    key,
    directives: [directive],
    inputKey: key,
    repeatable: true,
    minArgs: 1,
    maxArgs: Infinity,
    ...SERVED,
    fromArgs: (args) => args.map((value) => check(value, directive)),
    input: z.array(z.string(), { error: 'expected an array of strings' }),
    fromInput: (list) => list.map((value) => check(value, directive)),
  });
}

/** Every inheritable setting, in the order of the module's directive table (spec §10), then the gateway's own. */
export const SETTINGS: readonly SettingSpec[] = [
  flag('resumable', ['upload_resumable'], 'resumable'),
  store('store', 'upload_store', 'store'),
  store('stateStore', 'upload_state_store', 'stateStore'),
  define<'storeAccess', number | string | string[]>({
    key: 'storeAccess',
    directives: ['upload_store_access'],
    inputKey: 'storeAccess',
    minArgs: 1,
    maxArgs: 3,
    fromArgs: (args) => parseAccess(args, 'upload_store_access'),
    input: z.union([z.number(), z.string(), z.array(z.string())], {
      error: 'expected a file mode number (0o600) or nginx access text ("user:rw group:r")',
    }),
    fromInput: (value) => {
      if (typeof value !== 'number') {
        const args = typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value;
        return parseAccess(args, 'upload_store_access');
      }
      checkFileMode(value, 'upload_store_access');
      return value;
    },
  }),
  nameValues('setFormFields', 'upload_set_form_field', 'setFormFields'),
  nameValues('aggregateFormFields', 'upload_aggregate_form_field', 'aggregateFormFields'),
  define<'passFormFields', string[]>({
    key: 'passFormFields',
    directives: ['upload_pass_form_field'],
    inputKey: 'passFormFields',
    repeatable: true,
    minArgs: 1,
    maxArgs: 1,
    fromArgs: ([pattern]) => [checkRegex(pattern, 'upload_pass_form_field')],
    input: z.array(z.string(), { error: 'expected an array of regular expression strings' }),
    fromInput: (list) => list.map((pattern) => checkRegex(pattern, 'upload_pass_form_field')),
  }),
  define<'cleanup', string | Array<number | string>>({
    key: 'cleanup',
    directives: ['upload_cleanup'],
    inputKey: 'cleanup',
    repeatable: true,
    minArgs: 1,
    maxArgs: Infinity,
    fromArgs: (args) => args.map((arg) => parseCleanupCode(arg)),
    input: z.union([z.string(), z.array(z.union([z.number(), z.string()]))], {
      error: 'expected status codes and ranges: "400 404 500-505" or [400, 404, "500-505"]',
    }),
    fromInput: (value) =>
      (typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value).map((code) => parseCleanupCode(String(code))),
  }),
  size('bufferSize', 'upload_buffer_size', 'bufferSize', 1),
  size('maxPartHeaderLen', 'upload_max_part_header_len', 'maxPartHeaderLen', 1),
  size('maxFileSize', 'upload_max_file_size', 'maxFileSize', 0),
  size('maxOutputBodyLen', 'upload_max_output_body_len', 'maxOutputBodyLen', 0),
  size('limitRate', 'upload_limit_rate', 'limitRate', 0),
  flag('tameArrays', ['upload_tame_arrays'], 'tameArrays'),
  flag('passArgs', ['upload_pass_args'], 'passArgs'),
  nameValues('addHeaders', 'upload_add_header', 'addHeaders'),
  // The module's real (misspelled) name and the corrected one both work (D19).
  flag('emptyFieldNames', ['upload_empty_fiels_names', 'upload_empty_field_names'], 'emptyFieldNames'),
  // The module's state capacity is size/2 − 63 bytes; below 128 it has none (and the module crashes, Q6).
  size('mergeBufferSize', 'upload_merge_buffer_size', 'mergeBufferSize', 128),
  size('rangeHeaderBufferSize', 'upload_range_header_buffer_size', 'rangeHeaderBufferSize', 0),
  size('clientMaxBodySize', 'client_max_body_size', 'clientMaxBodySize', 0, true),
  // nginx core timeouts (D25): a stalled client is ended with 408, or (answers) disconnected.
  time('clientHeaderTimeoutMs', 'client_header_timeout', 'clientHeaderTimeout', 1, { serverOnly: true }),
  time('clientBodyTimeoutMs', 'client_body_timeout', 'clientBodyTimeout', 1),
  time('sendTimeoutMs', 'send_timeout', 'sendTimeout', 1, { progressLocation: true }),

  // Gateway extensions.
  flag('fsync', ['upload_fsync'], 'fsync'),
  flag('tus', ['upload_tus'], 'tus'),
  time('sessionTimeoutMs', 'upload_session_timeout', 'sessionTimeout', 1),
  time('completedRetentionMs', 'upload_completed_retention', 'completedRetention', 0),
  define<'sessionIdMaxLength', number>({
    key: 'sessionIdMaxLength',
    directives: ['upload_session_id_max_length'],
    inputKey: 'sessionIdMaxLength',
    minArgs: 1,
    maxArgs: 1,
    fromArgs: ([value]) => parseInteger(value, 'upload_session_id_max_length', 1, 240),
    input: z.number({ error: 'expected a number' }),
    fromInput: (value) => {
      checkIntegerRange(value, 'upload_session_id_max_length', 1, 240);
      return value;
    },
  }),
  define<'stateRedis', string | null>({
    key: 'stateRedis',
    directives: ['upload_state_redis'],
    inputKey: 'stateRedis',
    minArgs: 1,
    maxArgs: 1,
    fromArgs: ([value]) => stateRedisValue(value),
    input: z.union([z.string(), z.null()], { error: 'expected a redis:// URL, "off" or null' }),
    fromInput: (value) => (value === null ? null : stateRedisValue(value)),
  }),
  time('backendConnectTimeoutMs', 'proxy_connect_timeout', 'proxyConnectTimeout', 1, { proxyLocation: true }),
  time('backendReadTimeoutMs', 'proxy_read_timeout', 'proxyReadTimeout', 1, { proxyLocation: true }),

  // nginx-upload-progress-module (spec upload-progress-module.md §2).
  define<'trackUploads', { zone: string; timeout: number | string } | null>({
    key: 'trackUploads',
    directives: ['track_uploads'],
    inputKey: 'trackUploads',
    minArgs: 2,
    maxArgs: 2,
    fromArgs: ([zone, timeout]) => trackUploadsValue(zone, timeout),
    input: z.union([z.strictObject({ zone: z.string(), timeout: timeInput }), z.null()], {
      error: 'expected { zone, timeout } or null',
    }),
    fromInput: (value) => (value === null ? null : trackUploadsValue(value.zone, value.timeout)),
  }),
  progressText('progressHeader', 'upload_progress_header', 'expected a header name', headerName),
  progressText('progressJsonpParameter', 'upload_progress_jsonp_parameter', 'expected a query argument name', nonEmpty),
  progressText('progressContentType', 'upload_progress_content_type', 'expected a content type', (value) => contentTypeValue(value)),
  define<'progressTemplates', Partial<Record<string, string>>>({
    key: 'progressTemplates',
    // The file form is read by parse.ts (order matters with the output directives, §2).
    directives: ['upload_progress_template'],
    inputKey: 'progressTemplates',
    minArgs: 2,
    maxArgs: 2,
    progressLocation: true,
    fromArgs: ([state, template]) => progressTemplateValue(state, template) as ProgressTemplates,
    input: z.record(z.string(), z.string(), { error: 'expected { starting?, uploading?, done?, error? } template strings' }),
    fromInput: (value) => {
      let templates: Partial<ProgressTemplates> = {};
      for (const [state, template] of Object.entries(value)) templates = { ...templates, ...progressTemplateValue(state, template ?? '') };
      return templates as ProgressTemplates;
    },
  }),
  // Operations: nginx's access phase (allow/deny, auth_request) and logs, CORS, graceful stop.
  // Every location the gateway serves has them (upload, progress and metrics locations).
  define<'access', string[]>({
    key: 'access',
    directives: ['allow', 'deny'],
    inputKey: 'access',
    repeatable: true,
    minArgs: 1,
    maxArgs: 1,
    ...SERVED,
    fromArgs: ([value], ctx) => [parseAccessRule(ctx.directive === 'deny' ? 'deny' : 'allow', value)],
    input: z.array(z.string(), { error: 'expected an array of "allow ADDRESS" / "deny ADDRESS" strings' }),
    fromInput: (list) => list.map(accessRuleFromText),
  }),
  define<'authRequest', string | null>({
    key: 'authRequest',
    directives: ['auth_request'],
    inputKey: 'authRequest',
    minArgs: 1,
    maxArgs: 1,
    ...SERVED,
    fromArgs: ([value]) => authRequestValue(value),
    input: z.union([z.string(), z.null()], { error: 'expected /uri, an http:// URL, "off" or null' }),
    fromInput: (value) => (value === null ? null : authRequestValue(value)),
  }),
  define<'authRequestCache', string | number | { time: string | number; headers?: string[] } | null>({
    key: 'authRequestCache',
    directives: ['auth_request_cache'],
    inputKey: 'authRequestCache',
    minArgs: 1,
    maxArgs: Infinity,
    ...SERVED,
    fromArgs: ([time, ...headers]) => authRequestCacheValue(time, headers),
    input: z.union([z.string(), z.number(), z.strictObject({ time: timeInput, headers: z.array(z.string()).optional() }), z.null()], {
      error: 'expected a time, { time, headers } or null',
    }),
    fromInput: (value) =>
      value === null ? null : typeof value === 'object' ? authRequestCacheValue(value.time, value.headers ?? []) : authRequestCacheValue(value, []),
  }),
  define<'accessLog', string | null>({
    key: 'accessLog',
    directives: ['access_log'],
    inputKey: 'accessLog',
    minArgs: 1,
    maxArgs: 1,
    ...SERVED,
    fromArgs: ([value], ctx) => accessLogValue(value, ctx.baseDir),
    input: z.union([z.string(), z.null()], { error: 'expected a file, "off" or null' }),
    fromInput: (value, ctx) => (value === null ? null : accessLogValue(value, ctx.baseDir)),
  }),
  names('corsAllowOrigins', 'cors_allow_origin', corsOriginValue),
  names('corsAllowHeaders', 'cors_allow_headers', headerName),
  names('corsExposeHeaders', 'cors_expose_headers', headerName),
  flag('corsAllowCredentials', ['cors_allow_credentials'], 'corsAllowCredentials', SERVED),
  time('corsMaxAgeMs', 'cors_max_age', 'corsMaxAge', 0, SERVED),
  define<'errorLog', { file: string; level?: string } | string>({
    key: 'errorLog',
    directives: ['error_log'],
    inputKey: 'errorLog',
    minArgs: 1,
    maxArgs: 2,
    serverOnly: true,
    fromArgs: ([file, level], ctx) => errorLogValue(file, level, ctx.baseDir),
    input: z.union([z.string(), z.strictObject({ file: z.string(), level: z.string().optional() })], { error: 'expected a file, "stderr" or { file, level }' }),
    fromInput: (value, ctx) => (typeof value === 'string' ? errorLogValue(value, undefined, ctx.baseDir) : errorLogValue(value.file, value.level, ctx.baseDir)),
  }),
  time('shutdownTimeoutMs', 'worker_shutdown_timeout', 'workerShutdownTimeout', 0, { serverOnly: true }),
];

/** `track_uploads ZONE TIMEOUT`: the zone is checked against `upload_progress` once the file is read. */
function trackUploadsValue(zone: string, timeout: number | string): TrackUploads {
  if (zone.length === 0) throw new ValueError('"track_uploads" needs a zone name');
  let timeoutMs: number;
  try {
    timeoutMs = typeof timeout === 'number' ? timeout : parseTime(timeout);
  } catch {
    timeoutMs = NaN;
  }
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) throw new ValueError(`track_uploads "${zone}" timeout value invalid ("${timeout}")`);
  return { zone, timeoutMs };
}

function nonEmpty(value: string, directive: string): string {
  if (value.length === 0) throw new ValueError(`empty value in "${directive}" directive`);
  return value;
}

function contentTypeValue(value: string): string {
  if (value.length === 0 || /[\x00-\x1f\x7f]/.test(value)) throw new ValueError(`invalid value "${value}" in "upload_progress_content_type" directive`);
  return value;
}

/** One `upload_progress_template STATE TEMPLATE` (STATE: the name or its first two letters). */
export function progressTemplateValue(state: string, template: string): Partial<ProgressTemplates> {
  const name: ProgressState | null = parseProgressStateName(state);
  if (!name) throw new ValueError(`unknown state "${state}" in "upload_progress_template" directive (starting, uploading, done, error or st, up, do, er)`);
  return { [name]: compileTemplate(template, 'upload_progress_template') };
}

/** `upload_state_redis URL|off`: a checked redis:// URL, or null for `off`. */
function stateRedisValue(value: string): string | null {
  if (value === 'off') return null;
  const problem = redisUrlProblem(value);
  if (problem) throw new ValueError(`"upload_state_redis": ${problem}`);
  return value;
}

/** Setting spec by directive name (both spellings of `upload_empty_fiels_names`). */
export const SETTING_BY_DIRECTIVE: ReadonlyMap<string, SettingSpec> = new Map(
  SETTINGS.flatMap((spec) => spec.directives.map((name) => [name, spec] as const)),
);

/**
 * The defaults: the module's (spec §10) where it has one, nginx's `client_max_body_size` 1m and
 * 60s timeouts, and the gateway's for its extensions. The stores default to `data/store` (one hash level) and
 * `data/state` next to the configuration.
 */
export function defaultSettings(baseDir: string): FullSettings {
  return {
    resumable: false,
    store: { dir: path.resolve(baseDir, 'data/store'), levels: [1] },
    stateStore: { dir: path.resolve(baseDir, 'data/state'), levels: [] },
    storeAccess: 0o600,
    setFormFields: [],
    aggregateFormFields: [],
    passFormFields: [],
    cleanup: [],
    addHeaders: [],
    bufferSize: 4096,
    maxPartHeaderLen: 512,
    maxFileSize: 0,
    maxOutputBodyLen: 100 * 1024,
    limitRate: 0,
    tameArrays: false,
    passArgs: false,
    emptyFieldNames: false,
    mergeBufferSize: 2048,
    rangeHeaderBufferSize: 256,
    clientMaxBodySize: 1024 * 1024,
    clientHeaderTimeoutMs: 60 * 1000,
    clientBodyTimeoutMs: 60 * 1000,
    sendTimeoutMs: 60 * 1000,
    fsync: true,
    tus: false,
    sessionTimeoutMs: 24 * 3600 * 1000,
    completedRetentionMs: 10 * 60 * 1000,
    sessionIdMaxLength: 200,
    stateRedis: null,
    backendConnectTimeoutMs: 60 * 1000,
    backendReadTimeoutMs: 60 * 1000,
    trackUploads: null,
    progressHeader: DEFAULT_PROGRESS_HEADER,
    progressJsonpParameter: DEFAULT_JSONP_PARAMETER,
    progressContentType: DEFAULT_PROGRESS_CONTENT_TYPE,
    // Without an output directive the module answers with its JSONP templates (§5.1).
    progressTemplates: outputTemplates('jsonp'),
    access: [],
    authRequest: null,
    authRequestCache: null,
    accessLog: null,
    corsAllowOrigins: [],
    corsAllowHeaders: [],
    corsExposeHeaders: [],
    corsAllowCredentials: false,
    corsMaxAgeMs: 10 * 60 * 1000,
    errorLog: null,
    shutdownTimeoutMs: 30 * 1000,
  };
}

/**
 * Applies levels from outermost to innermost: a level's value replaces the outer one. A repeatable
 * setting's list is inherited as a whole, and only by a level that has none (an empty list counts
 * as none, as a level without the directive does in nginx).
 */
export function mergeSettings(base: FullSettings, ...levels: Settings[]): FullSettings {
  const merged: Record<string, unknown> = { ...base };
  for (const level of levels) {
    for (const [key, value] of Object.entries(level)) {
      if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
      // Each state's template is inherited on its own (spec upload-progress-module.md §2).
      if (key === 'progressTemplates') merged[key] = { ...(merged[key] as object), ...(value as object) };
      else merged[key] = value;
    }
  }
  return merged as unknown as FullSettings;
}
