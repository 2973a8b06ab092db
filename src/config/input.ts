/**
 * The shape of programmatic configuration (`resolveConfig`): a plain object with camelCase names
 * mirroring the directives. Types only; `resolve.ts` checks and resolves it.
 */
import type { ProgressOutput } from '../protocol/upload-progress';

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
