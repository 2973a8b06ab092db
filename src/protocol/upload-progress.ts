/**
 * nginx-upload-progress-module's wire format, pure (spec upload-progress-module.md): where the
 * progress id and the JSONP callback are read (§3, §6.3), which state an entry is in (§7), the
 * built-in template sets and their content types (§5), and rendering a template to the exact bytes
 * a probe gets. Quirks (§12, P1–P10) are copied or fixed as the README lists; each is marked here.
 */
import { parseTemplate, type Template } from './templates';

/** The states a progress probe reports (spec upload-progress-module.md §7). */
export type ProgressState = 'starting' | 'uploading' | 'done' | 'error';
export type ProgressTemplates = Record<ProgressState, Template>;


export const PROGRESS_STATES: readonly ProgressState[] = ['starting', 'uploading', 'done', 'error'];

/** Default name of the id header and query argument (`upload_progress_header`). */
export const DEFAULT_PROGRESS_HEADER = 'X-Progress-ID';
/** Default name of the JSONP callback argument (`upload_progress_jsonp_parameter`). */
export const DEFAULT_JSONP_PARAMETER = 'callback';
/** Content type without an output directive (§5.2: JSONP-shaped body nonetheless). */
export const DEFAULT_PROGRESS_CONTENT_TYPE = 'text/javascript';
/** The two headers every probe answer carries after `Connection` (§6.2). */
export const PROGRESS_EXPIRES = 'Thu, 01 Jan 1970 00:00:01 GMT';
export const PROGRESS_CACHE_CONTROL = 'no-cache';

export type ProgressOutput = 'jsonp' | 'json' | 'java';

/** The template sources of the three built-in sets (§5.1), with the module's `\r\n`. */
export const OUTPUT_TEMPLATE_SOURCES: Readonly<Record<ProgressOutput, Readonly<Record<ProgressState, string>>>> = {
  jsonp: {
    starting: '$uploadprogress_callback({ "state" : "starting" });\r\n',
    uploading: '$uploadprogress_callback({ "state" : "uploading", "received" : $uploadprogress_received, "size" : $uploadprogress_length });\r\n',
    done: '$uploadprogress_callback({ "state" : "done" });\r\n',
    error: '$uploadprogress_callback({ "state" : "error", "status" : $uploadprogress_status });\r\n',
  },
  json: {
    starting: '{ "state" : "starting" }\r\n',
    uploading: '{ "state" : "uploading", "received" : $uploadprogress_received, "size" : $uploadprogress_length }\r\n',
    done: '{ "state" : "done" }\r\n',
    error: '{ "state" : "error", "status" : $uploadprogress_status }\r\n',
  },
  java: {
    starting: "new Object({ 'state' : 'starting' })\r\n",
    uploading: "new Object({ 'state' : 'uploading', 'received' : $uploadprogress_received, 'size' : $uploadprogress_length })\r\n",
    done: "new Object({ 'state' : 'done' })\r\n",
    error: "new Object({ 'state' : 'error', 'status' : $uploadprogress_status })\r\n",
  },
};

/** The content type each output directive installs (§5.2). */
export const OUTPUT_CONTENT_TYPES: Readonly<Record<ProgressOutput, string>> = {
  jsonp: 'application/javascript',
  json: 'application/json',
  java: 'text/javascript',
};

/** The four templates of a built-in set. */
export function outputTemplates(output: ProgressOutput): ProgressTemplates {
  const sources = OUTPUT_TEMPLATE_SOURCES[output];
  return {
    starting: parseTemplate(sources.starting),
    uploading: parseTemplate(sources.uploading),
    done: parseTemplate(sources.done),
    error: parseTemplate(sources.error),
  };
}

/** `upload_progress_template STATE …`: the full name or its first two letters, exact and case-sensitive (§2). */
export function parseProgressStateName(name: string): ProgressState | null {
  for (const state of PROGRESS_STATES) if (name === state || name === state.slice(0, 2)) return state;
  return null;
}

/**
 * `N=` in a raw query string (§3, P3 copied): the first place it occurs, anywhere (not only at
 * a parameter's start), the name compared case-insensitively (`ignoreCase`) or exactly; the value
 * runs to the next `&`, except that its first character never ends it (`N=&a=1` gives `&a=1`).
 * Raw: no percent-decoding, `+` stays `+`. Null when `N=` does not occur.
 */
export function queryArgument(query: string, name: string, ignoreCase: boolean): string | null {
  const needle = `${name}=`;
  const at = ignoreCase ? query.toLowerCase().indexOf(needle.toLowerCase()) : query.indexOf(needle);
  if (at < 0) return null;
  const start = at + needle.length;
  if (start >= query.length) return '';
  const end = query.indexOf('&', start + 1);
  return query.slice(start, end < 0 ? query.length : end);
}

/** The raw query string of a request-target (`''` when there is none). */
export function rawQuery(url: string | undefined): string {
  const q = (url ?? '').indexOf('?');
  return q < 0 ? '' : (url ?? '').slice(q + 1);
}

/**
 * The progress id of a request (§3): the first header named `name` (any case; its value trimmed;
 * an empty value is a valid id), else the query argument `name` (P3 rules), else null. Header
 * beats query. Ids are byte strings (latin1) compared exactly. P5 fixed: ids of any length work.
 */
export function progressIdFrom(rawHeaders: readonly string[], url: string | undefined, name: string): string | null {
  const wanted = name.toLowerCase();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === wanted) return rawHeaders[i + 1].trim();
  }
  return queryArgument(rawQuery(url), name, true);
}

/**
 * P4 fixed: a callback is reflected only when it is a JavaScript name path (`[A-Za-z0-9_$.]`, as
 * `jQuery1234_5678` or `app.progress`); anything else (`<script>`, `a%20b`, `&x=1`) is dropped, so
 * the body starts with `(`, as it does without a callback.
 */
export const SAFE_CALLBACK = /^[A-Za-z0-9_$.]+$/;

/** `$uploadprogress_callback` (§6.3): the `param=` argument of the probe's raw query, case-sensitive substring match, P4-checked. */
export function callbackFrom(url: string | undefined, param: string): string {
  const value = queryArgument(rawQuery(url), param, false);
  return value !== null && SAFE_CALLBACK.test(value) ? value : '';
}

/** What a probe needs of an upload entry. */
export interface ProgressFigures {
  /** `$uploadprogress_length`: the upload's size (−1 while a chunked body's size is unknown, P6). */
  size: number;
  /** Bytes received (P1 fixed: 0 before the first body byte, never a jump to `size`). */
  received: number;
  /** The request (or, for a resumable session, the hand-off) has finished. */
  finished: boolean;
  /** Stored final status: 0 for none, else the response status if ≥ 300 (P7: 3xx stays `done`). */
  status: number;
}

/** An entry as a probe reports it: the state (§7) and the values of the template variables. */
export interface ProgressView {
  state: ProgressState;
  length: number;
  received: number;
  remaining: number;
  status: number;
}

/**
 * §7, in order: no entry → starting; status ≥ 400 → error; finished → done; size 0 and nothing
 * left → starting; else uploading. P8 fixed: an unknown id renders its variables as 0 (the module
 * crashes its worker when a `starting` template uses them).
 */
export function progressView(entry: ProgressFigures | undefined): ProgressView {
  if (!entry) return { state: 'starting', length: 0, received: 0, remaining: 0, status: 0 };
  const remaining = entry.size < 0 ? -1 : Math.max(0, entry.size - entry.received);
  const view = { length: entry.size, received: entry.received, remaining, status: entry.status };
  if (entry.status >= 400) return { state: 'error', ...view };
  if (entry.finished) return { state: 'done', ...view };
  if (entry.size === 0 && remaining === 0) return { state: 'starting', ...view };
  return { state: 'uploading', ...view };
}

/** The values of the `$uploadprogress_*` variables for one probe. */
export function progressVariables(view: ProgressView, callback: string): (name: string) => string | undefined {
  return (name) => {
    switch (name) {
      case 'uploadprogress_length':
        return String(view.length);
      case 'uploadprogress_received':
        return String(view.received);
      case 'uploadprogress_remaining':
        return String(view.remaining);
      case 'uploadprogress_status':
        return String(view.status);
      case 'uploadprogress_callback':
        return callback;
    }
    return undefined;
  };
}

/**
 * A template's bytes: literal text as written in the configuration (UTF-8), variable values as the
 * request's bytes (latin1 strings: ids, callbacks, `$arg_*`), unknown variables empty as in nginx.
 * Templates get no implicit newline (§5).
 */
export function renderProgressTemplate(template: Template, lookup: (name: string) => string | undefined): Buffer {
  const parts: Buffer[] = [];
  for (const part of template.parts) {
    if ('literal' in part) parts.push(Buffer.from(part.literal, 'utf8'));
    else parts.push(Buffer.from(lookup(part.variable) ?? '', 'latin1'));
  }
  return Buffer.concat(parts);
}

/** The body of a probe answer: the state's template with the entry's values (and request variables from `request`). */
export function renderProbe(templates: ProgressTemplates, view: ProgressView, callback: string, request: (name: string) => string | undefined = () => undefined): Buffer {
  const own = progressVariables(view, callback);
  return renderProgressTemplate(templates[view.state], (name) => (name.startsWith('uploadprogress_') ? own(name) : request(name)));
}

/** Whether a probe asks for the Server-Sent Events stream (an `Accept` listing `text/event-stream`). */
export function acceptsEventStream(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((item) => {
    const [type, ...params] = item.split(';').map((s) => s.trim().toLowerCase());
    if (type !== 'text/event-stream') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
