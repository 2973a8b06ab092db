import type { IncomingMessage } from 'node:http';
import type { LocationConfig, NameValueTemplate, Template } from '../config/types';
import { renderTemplate } from '../config/templates';
import { FormBodyBuilder } from '../protocol/form-body';
import { DIGEST_NAMES, type DigestName } from '../store/digests';

/** Per-file values behind the `$upload_*` variables (§9). */
export interface FileVariables {
  fieldName: string;
  fileName: string;
  contentType: string;
  tmpPath: string;
  fileNumber: number;
  contentRange: string;
  /** Known after the data: digests (lower-case hex) and size. */
  digests?: Partial<Record<DigestName, string>>;
  size?: number;
}

/** Looks up `$name` for a template: upload variables first, then the nginx request variables we support. */
export function variableLookup(req: IncomingMessage, file: FileVariables | null): (name: string) => string | undefined {
  return (name) => {
    if (name.startsWith('upload_')) return file ? uploadVariable(name.slice(7), file) : undefined;
    return requestVariable(name, req);
  };
}

function uploadVariable(name: string, file: FileVariables): string | undefined {
  switch (name) {
    case 'field_name':
      return file.fieldName;
    case 'file_name':
      return file.fileName;
    case 'content_type':
      return file.contentType;
    case 'tmp_path':
      return file.tmpPath;
    case 'file_number':
      return String(file.fileNumber);
    case 'content_range':
      return file.contentRange;
    case 'file_size':
      return file.size === undefined ? '' : String(file.size);
  }
  const m = /^file_(md5|sha1|sha256|sha512|crc32)(_uc)?$/.exec(name);
  if (m) {
    const value = file.digests?.[m[1] as DigestName] ?? '';
    return m[2] ? value.toUpperCase() : value;
  }
  return undefined;
}

function requestVariable(name: string, req: IncomingMessage): string | undefined {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const args = q < 0 ? '' : url.slice(q + 1);
  if (name.startsWith('arg_')) {
    for (const pair of args.split('&')) {
      const eq = pair.indexOf('=');
      if ((eq < 0 ? pair : pair.slice(0, eq)).toLowerCase() === name.slice(4).toLowerCase()) return eq < 0 ? '' : pair.slice(eq + 1);
    }
    return undefined;
  }
  if (name.startsWith('http_')) return lastRawHeader(req, name.slice(5).replace(/_/g, '-'));
  if (name.startsWith('cookie_')) {
    const cookies = lastRawHeader(req, 'cookie') ?? '';
    for (const c of cookies.split(';')) {
      const [k, ...v] = c.trim().split('=');
      if (k === name.slice(7)) return v.join('=');
    }
    return undefined;
  }
  switch (name) {
    case 'remote_addr':
      return req.socket.remoteAddress;
    case 'request_uri':
      return url;
    case 'uri':
      return q < 0 ? url : url.slice(0, q);
    case 'args':
    case 'query_string':
      return args;
    case 'host':
      return (lastRawHeader(req, 'host') ?? '').replace(/:\d+$/, '');
    case 'request_method':
      return req.method;
    case 'content_length':
      return lastRawHeader(req, 'content-length');
    case 'content_type':
      return lastRawHeader(req, 'content-type');
    case 'scheme':
      return 'http';
    case 'server_port':
      return String(req.socket.localPort ?? '');
  }
  return undefined;
}

/** Every value of the headers with these exact names (case-insensitive, D12), in request order, as raw latin1 bytes. */
export function rawHeaderValues(req: IncomingMessage, ...names: string[]): string[] {
  const wanted = names.map((n) => n.toLowerCase());
  const values: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (wanted.includes(raw[i].toLowerCase())) values.push(raw[i + 1]);
  return values;
}

/** The last value of a header by exact name (later occurrences win, as in the module). */
export function lastRawHeader(req: IncomingMessage, ...names: string[]): string | undefined {
  return rawHeaderValues(req, ...names).pop();
}

const DIGEST_VARIABLE = /^upload_file_(md5|sha1|sha256|sha512|crc32)(_uc)?$/;

/** Which digests the aggregate fields reference (only those are computed, as the module does). */
export function digestsNeeded(location: LocationConfig): Set<DigestName> {
  const needed = new Set<DigestName>();
  const scan = (t: Template) => {
    for (const part of t.parts) {
      if (!('variable' in part)) continue;
      const m = DIGEST_VARIABLE.exec(part.variable);
      if (m && (DIGEST_NAMES as readonly string[]).includes(m[1])) needed.add(m[1] as DigestName);
    }
  };
  for (const f of location.aggregateFormFields) {
    scan(f.name);
    scan(f.value);
  }
  return needed;
}

/** Appends one file's generated fields (`upload_set_form_field` or `upload_aggregate_form_field`). */
export function appendFileFields(form: FormBodyBuilder, fields: readonly NameValueTemplate[], lookup: (name: string) => string | undefined): void {
  for (const f of fields) form.appendField(renderTemplate(f.name, lookup), renderTemplate(f.value, lookup));
}

/** `upload_add_header` values; a header whose name or value renders empty is skipped (§8). */
export function renderAddHeaders(location: LocationConfig, lookup: (name: string) => string | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const h of location.addHeaders) {
    const name = renderTemplate(h.name, lookup);
    const value = renderTemplate(h.value, lookup);
    if (name && value) out.push([name, value]);
  }
  return out;
}
