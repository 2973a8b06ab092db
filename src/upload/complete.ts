/**
 * Completing an upload: the module's generated form for one file (§4.6, D6), its size limit
 * (D15), and the hand-off to `upload_pass` with `upload_cleanup` (§5, §6). Resumable sessions,
 * single-shot uploads and temporary-named uploads all complete through `handOffFile`.
 */
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { FormBodyBuilder } from '../protocol/form-body';
import { UploadError } from '../protocol/http-errors';
import { statusInRanges } from '../protocol/status-ranges';
import { callBackend, type BackendAnswer } from './handoff';
import { appendFileFields, renderAddHeaders, variableLookup, type FileVariables } from './variables';
import { uploadObserver } from './observer';
import { performance } from 'node:perf_hooks';

/** D15: the generated form is counted once; over `upload_max_output_body_len` → 413. */
export function checkOutputLimit(length: number, location: LocationConfig): void {
  if (location.maxOutputBodyLen > 0 && length > location.maxOutputBodyLen) {
    throw new UploadError(413, `the form for the backend (${length} bytes) would exceed upload_max_output_body_len (${location.maxOutputBodyLen} bytes)`);
  }
}

export interface FileHandOff {
  /** The answer to relay. */
  answer: BackendAnswer;
  /** `upload_add_header` headers of the answer. */
  addHeaders: Array<[string, string]>;
  /** The answer's status is in `upload_cleanup`: the file is to be removed. */
  cleanup: boolean;
}

/** What is known of a file once its data is in: digests and size (D6), and `$upload_content_range` then. */
export type FileResult = Pick<FileVariables, 'digests' | 'size' | 'contentRange'>;

/**
 * Sends one file's form to the backend: the set-fields (with `vars` as before the data), then,
 * with `result` known (D6), the aggregate fields; `result` null when the file was dropped
 * (`upload_max_file_size`): its set-fields are rolled back and the form still goes (§3.16).
 * Throws `BackendUnreachable` when the backend cannot be reached.
 */
export async function handOffFile(ctx: Context, location: LocationConfig, boundary: string, vars: FileVariables, result: FileResult | null): Promise<FileHandOff> {
  const lookup = variableLookup(ctx.req, vars);
  const form = new FormBodyBuilder(boundary);
  const beforeFile = form.checkpoint();
  appendFileFields(form, location.setFormFields, lookup);
  if (!result) form.rollback(beforeFile);
  else {
    Object.assign(vars, result);
    appendFileFields(form, location.aggregateFormFields, lookup);
  }
  const addHeaders = renderAddHeaders(location, lookup);
  const answer = await observeHandOff(ctx, async () => {
    checkOutputLimit(form.length, location);
    return callBackend(location, ctx.req, form.finish(), `multipart/form-data; boundary=${boundary}`);
  });
  return { answer, addHeaders, cleanup: statusInRanges(answer.status, location.cleanup) };
}

/** Runs a hand-off and tells the request's observers how it ended and how long it took. */
export async function observeHandOff(ctx: Context, handOff: () => Promise<BackendAnswer>): Promise<BackendAnswer> {
  const observer = uploadObserver(ctx);
  const started = performance.now();
  try {
    const answer = await handOff();
    observer?.handedOff?.(answer.status, (performance.now() - started) / 1000);
    return answer;
  } catch (err) {
    observer?.handedOff?.(null, (performance.now() - started) / 1000);
    throw err;
  }
}
