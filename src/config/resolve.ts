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
  /** upload_fsync */
  fsync?: boolean;
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
  locations?: LocationInput[];
  /** The built-in sample backend (see `embeddedDefaults`); `filesDir` is relative to `baseDir`. */
  sampleBackend?: { filesDir: string } | null;
}

const SOURCE = '<object>';

const settingsShape = Object.fromEntries(SETTINGS.map((spec) => [spec.inputKey, spec.input.optional()]));

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
  ...settingsShape,
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
    };
  });

  const draft: ConfigDraft = {
    source: SOURCE,
    baseDir: root,
    listen: value.listen === undefined ? null : listenFromInput(value.listen),
    top,
    locations,
    sampleBackend: value.sampleBackend ? { filesDir: path.resolve(root, value.sampleBackend.filesDir) } : null,
  };
  return finalizeConfig(draft);
}
