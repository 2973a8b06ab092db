/**
 * Values with nginx variables (`$name`, `${name}`), as used by `upload_set_form_field`,
 * `upload_aggregate_form_field` and `upload_add_header`.
 *
 * Parsing follows nginx's script compiler: every `$` starts a variable (nginx has no escape for
 * it), a name is `[A-Za-z0-9_]+`, and `${name}` lets a name be followed directly by name
 * characters (`${upload_field_name}_path`). Unknown variables are configuration errors, as in
 * nginx (`unknown "x" variable`).
 */
import { ValueError } from './value-error';

/** One piece of a template such as `"$upload_field_name.path"`. */
export type TemplatePart = { literal: string } | { variable: string };

/** A parsed nginx value with variables, e.g. `upload_set_form_field "${upload_field_name}_x" "$upload_file_name"`. */
export interface Template {
  /** The text as written (after nginx unquoting), for messages. */
  source: string;
  parts: TemplatePart[];
}

/** Upload variables usable in every module template (spec §9). */
export const UPLOAD_VARIABLES: readonly string[] = [
  'upload_field_name',
  'upload_file_name',
  'upload_content_type',
  'upload_tmp_path',
  'upload_file_number',
  'upload_content_range',
];

/** Upload variables known only once a file is complete: `upload_aggregate_form_field` only (spec §9). */
export const AGGREGATE_ONLY_VARIABLES: readonly string[] = [
  'upload_file_md5',
  'upload_file_md5_uc',
  'upload_file_sha1',
  'upload_file_sha1_uc',
  'upload_file_sha256',
  'upload_file_sha256_uc',
  'upload_file_sha512',
  'upload_file_sha512_uc',
  'upload_file_crc32',
  'upload_file_size',
];

/** Variables of `upload_progress_template` (spec upload-progress-module.md §2): usable there only. */
export const UPLOADPROGRESS_VARIABLES: readonly string[] = [
  'uploadprogress_length',
  'uploadprogress_received',
  'uploadprogress_remaining',
  'uploadprogress_status',
  'uploadprogress_callback',
];

/** nginx request variables the gateway provides. */
export const REQUEST_VARIABLES: readonly string[] = [
  'remote_addr',
  'request_uri',
  'uri',
  'args',
  'query_string',
  'host',
  'request_method',
  'content_length',
  'content_type',
  'scheme',
  'server_port',
];

/** nginx prefix variables: `$arg_NAME` (query argument), `$http_NAME` (request header), `$cookie_NAME`. */
export const REQUEST_VARIABLE_PREFIXES: readonly string[] = ['arg_', 'http_', 'cookie_'];

/** Every variable with a fixed name; prefix variables are in `REQUEST_VARIABLE_PREFIXES`. */
export const KNOWN_VARIABLES: ReadonlySet<string> = new Set([
  ...UPLOAD_VARIABLES,
  ...AGGREGATE_ONLY_VARIABLES,
  ...REQUEST_VARIABLES,
  ...UPLOADPROGRESS_VARIABLES,
]);

const AGGREGATE_ONLY = new Set(AGGREGATE_ONLY_VARIABLES);
const UPLOAD_ONLY = new Set([...UPLOAD_VARIABLES, ...AGGREGATE_ONLY_VARIABLES]);
const PROGRESS_ONLY = new Set(UPLOADPROGRESS_VARIABLES);

export function isKnownVariable(name: string): boolean {
  return (
    KNOWN_VARIABLES.has(name) ||
    REQUEST_VARIABLE_PREFIXES.some((prefix) => name.length > prefix.length && name.startsWith(prefix))
  );
}

export function isAggregateOnlyVariable(name: string): boolean {
  return AGGREGATE_ONLY.has(name);
}

function isNameChar(c: string): boolean {
  return /^[A-Za-z0-9_]$/.test(c);
}

/** Splits a value into literal text and variable references. Syntax errors throw `ValueError`. */
export function parseTemplate(source: string): Template {
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c !== '$') {
      literal += c;
      i++;
      continue;
    }
    i++;
    const bracket = source[i] === '{';
    if (bracket) i++;
    const start = i;
    while (i < source.length && isNameChar(source[i])) i++;
    const name = source.slice(start, i);
    if (bracket) {
      if (source[i] !== '}') throw new ValueError(`the closing bracket in "${name}" variable is missing in "${source}"`);
      i++;
    }
    if (name.length === 0) throw new ValueError(`invalid variable name in "${source}"`);
    if (literal) parts.push({ literal });
    literal = '';
    parts.push({ variable: name });
  }
  if (literal) parts.push({ literal });
  return { source, parts };
}

/** Where a template is used; decides which upload variables it may reference. */
export type TemplateContext = 'upload_set_form_field' | 'upload_aggregate_form_field' | 'upload_add_header' | 'upload_progress_template';

/** Checks that every variable exists and may be used in `context`. Throws `ValueError`. */
export function checkTemplateVariables(template: Template, context: TemplateContext): void {
  for (const part of template.parts) {
    if (!('variable' in part)) continue;
    const name = part.variable;
    if (!isKnownVariable(name)) throw new ValueError(`unknown "${name}" variable`);
    if (context === 'upload_progress_template') {
      // A progress probe is no upload: the upload module's variables would always be empty there.
      if (UPLOAD_ONLY.has(name)) throw new ValueError(`variable "$${name}" cannot be used in upload_progress_template`);
      continue;
    }
    if (PROGRESS_ONLY.has(name)) throw new ValueError(`variable "$${name}" can be used only in upload_progress_template, not in ${context}`);
    if (context !== 'upload_aggregate_form_field' && isAggregateOnlyVariable(name)) {
      // The module refuses these outside aggregate fields: the value exists only once the file is complete.
      throw new ValueError(`variable "$${name}" can be used only in upload_aggregate_form_field, not in ${context}`);
    }
  }
}

/** Parses and checks a template for `context`. Throws `ValueError`. */
export function compileTemplate(source: string, context: TemplateContext): Template {
  const template = parseTemplate(source);
  checkTemplateVariables(template, context);
  return template;
}

/** Evaluates a template; variables `lookup` does not know are empty, as in nginx. */
export function renderTemplate(template: Template, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (const part of template.parts) {
    out += 'literal' in part ? part.literal : (lookup(part.variable) ?? '');
  }
  return out;
}

/** Whether the template references any of `names` (a set, or a predicate on the variable name). */
export function templateUses(template: Template, names: ReadonlySet<string> | ((name: string) => boolean)): boolean {
  const test = typeof names === 'function' ? names : (name: string) => names.has(name);
  return template.parts.some((part) => 'variable' in part && test(part.variable));
}
