/**
 * The header-level rules of multipart mode: the boundary in the request's Content-Type (spec
 * §4.1, D1), part headers (§4.3, D11), file vs. field parts and field-name rules (§4.4, §4.5, D5).
 */
import { parseContentDisposition } from './content-disposition';
import { quoteValue } from './quote';

export type BoundaryResult = { ok: true; boundary: string } | { ok: false; reason: string };

/**
 * §4.1: after the first `;`, the first occurrence of the case-sensitive text `boundary=`; the
 * value runs to the first space, `;`, CR or LF; one pair of surrounding double quotes is removed.
 * No `;`, no `boundary=` or an empty value → not ok (the module closes the connection; D1: 400).
 */
export function extractBoundary(contentType: string): BoundaryResult {
  const semi = contentType.indexOf(';');
  if (semi < 0) return { ok: false, reason: 'multipart/form-data without a boundary parameter' };
  const at = contentType.indexOf('boundary=', semi + 1);
  if (at < 0) return { ok: false, reason: 'multipart/form-data without a boundary parameter' };
  const start = at + 'boundary='.length;
  let end = start;
  while (end < contentType.length && !' ;\r\n'.includes(contentType[end])) end++;
  let boundary = contentType.slice(start, end);
  if (boundary.length >= 2 && boundary.startsWith('"') && boundary.endsWith('"')) boundary = boundary.slice(1, -1);
  if (boundary.length === 0) return { ok: false, reason: 'multipart/form-data with an empty boundary' };
  return { ok: true, boundary };
}

/** What the headers of one part say (§4.3). */
export interface PartHeaders {
  /** A Content-Disposition header was seen. */
  hasDisposition: boolean;
  /** The `name` parameter, verbatim; `''` when absent. */
  fieldName: string;
  /** The path-stripped file name; `''` when absent (then the part is a field, §4.4). */
  fileName: string;
  /** The part's Content-Type, verbatim with parameters; `''` when absent. */
  contentType: string;
}

export function emptyPartHeaders(): PartHeaders {
  return { hasDisposition: false, fieldName: '', fileName: '', contentType: '' };
}

export type PartHeaderResult = { ok: true } | { ok: false; reason: string };

function skipOws(s: string, from: number): number {
  let i = from;
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

/**
 * Folds one header line (CRs already removed) into `headers`. Only `Content-Disposition` and
 * `Content-Type` are understood (exact names, any case, D12); other lines are ignored. A later
 * occurrence overwrites what an earlier one set. Malformed (not ok): a disposition other than
 * `form-data`/`attachment` (or an empty one), an empty or all-space Content-Type.
 */
export function applyPartHeader(headers: PartHeaders, line: string): PartHeaderResult {
  const colon = line.indexOf(':');
  if (colon < 0) return { ok: true };
  const name = line.slice(0, colon).toLowerCase();
  const value = line.slice(skipOws(line, colon + 1));
  if (name === 'content-disposition') {
    const parsed = parseContentDisposition(value);
    if (!parsed.ok) return { ok: false, reason: `part ${parsed.reason}` };
    headers.hasDisposition = true;
    headers.fieldName = parsed.fieldName;
    headers.fileName = parsed.fileName;
  } else if (name === 'content-type') {
    if (value.trim() === '') return { ok: false, reason: 'empty part Content-Type' };
    headers.contentType = value;
  }
  return { ok: true };
}

/** §4.4 step 3: `files[]` → `files` (names longer than 2 ending in `[]`). */
export function tameArrayName(fieldName: string): string {
  return fieldName.length > 2 && fieldName.endsWith('[]') ? fieldName.slice(0, -2) : fieldName;
}

/**
 * `upload_pass_form_field` (D5: the documented rule): a client field is passed when its name is
 * non-empty and any pattern finds a match in it (unanchored JavaScript RegExp search).
 */
export class FieldFilter {
  private readonly patterns: RegExp[];

  constructor(sources: readonly string[]) {
    this.patterns = sources.map((source) => {
      try {
        return new RegExp(source);
      } catch (err) {
        throw new Error(`upload_pass_form_field ${quoteValue(source)}: ${(err as Error).message}`);
      }
    });
  }

  passes(fieldName: string): boolean {
    if (fieldName === '') return false;
    for (const re of this.patterns) {
      re.lastIndex = 0;
      if (re.test(fieldName)) return true;
    }
    return false;
  }
}
