import type { IncomingMessage } from 'node:http';
import { requestVariable } from '../http/request';
import type { LocationConfig, NameValueTemplate, Template } from '../config/types';
import { renderTemplate } from '../protocol/templates';
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

const DIGEST_VARIABLE = /^upload_file_(md5|sha1|sha256|sha512|crc32)(_uc)?$/;

const neededByLocation = new WeakMap<LocationConfig, ReadonlySet<DigestName>>();

/**
 * Which digests the aggregate fields reference (only those are computed, as the module does):
 * worked out once per location from its configuration.
 */
export function digestsNeeded(location: LocationConfig): ReadonlySet<DigestName> {
  let needed = neededByLocation.get(location);
  if (!needed) neededByLocation.set(location, (needed = scanDigests(location)));
  return needed;
}

function scanDigests(location: LocationConfig): Set<DigestName> {
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
