/**
 * Completing an upload (§5, §6): the module's generated form for one file (§4.6, D6) within its
 * size limit (D15), and the one way a request's upload reaches `upload_pass`:
 * - `completeRequest`: a multipart form or a temporary-named file, handed off by its own request;
 *   `upload_cleanup` removes the request's files for the backend's status (and for the `502` of an
 *   unreachable backend, as the module does);
 * - a session's completion (`raw-upload.ts`, `completeSession`) sends `fileForm` with the same
 *   `callBackend`, inside its exactly-once claim (D7).
 */
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { FormBodyBuilder } from '../protocol/form-body';
import { HttpError } from '../protocol/http-errors';
import { statusInRanges } from '../protocol/status-ranges';
import { BackendUnreachable, callBackend, type BackendAnswer } from './handoff';
import { relayAnswer } from './responses';
import { appendFileFields, renderAddHeaders, variableLookup, type FileVariables } from './variables';
import { uploadObserver } from './observer';
import { performance } from 'node:perf_hooks';

/** D15: the generated form is counted once; over `upload_max_output_body_len` → 413. */
export function checkOutputLimit(length: number, location: LocationConfig): void {
  if (location.maxOutputBodyLen > 0 && length > location.maxOutputBodyLen) {
    throw new HttpError(413, `the form for the backend (${length} bytes) would exceed upload_max_output_body_len (${location.maxOutputBodyLen} bytes)`);
  }
}

/** What is known of a file once its data is in: digests and size (D6), and `$upload_content_range` then. */
export type FileResult = Pick<FileVariables, 'digests' | 'size' | 'contentRange'>;

/**
 * One file's form: the set-fields (with `vars` as before the data), then, with `result` known
 * (D6), the aggregate fields; `result` null when the file was dropped (`upload_max_file_size`):
 * its set-fields are rolled back and the form still goes (§3.16). Also the `upload_add_header`
 * headers of the answer.
 */
export function fileForm(ctx: Context, location: LocationConfig, boundary: string, vars: FileVariables, result: FileResult | null): { form: Buffer; addHeaders: Array<[string, string]> } {
  const lookup = variableLookup(ctx.req, vars);
  const builder = new FormBodyBuilder(boundary);
  const beforeFile = builder.checkpoint();
  appendFileFields(builder, location.setFormFields, lookup);
  if (!result) builder.rollback(beforeFile);
  else {
    Object.assign(vars, result);
    appendFileFields(builder, location.aggregateFormFields, lookup);
  }
  checkOutputLimit(builder.length, location);
  return { form: builder.finish(), addHeaders: renderAddHeaders(location, lookup) };
}

/**
 * Hands a request's generated form to the backend and relays the answer; `contentType` replaces
 * the client's (raw mode) or is null (multipart keeps the client's, §5.2). `removeFiles` deletes
 * the request's files when `upload_cleanup` lists the status.
 */
export async function completeRequest(
  ctx: Context,
  location: LocationConfig,
  form: Buffer,
  contentType: string | null,
  addHeaders: Array<[string, string]>,
  removeFiles: () => Promise<unknown>,
): Promise<void> {
  let answer;
  try {
    answer = await observeHandOff(ctx, () => callBackend(location, ctx.req, form, contentType));
  } catch (err) {
    // As the module: the answer is a 502, and upload_cleanup decides about the files.
    if (statusInRanges(502, location.cleanup)) await removeFiles();
    if (!(err instanceof BackendUnreachable)) throw err;
    throw new HttpError(502, `the backend is unreachable (${err.message})`);
  }
  if (statusInRanges(answer.status, location.cleanup)) await removeFiles();
  relayAnswer(ctx, answer, addHeaders);
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
