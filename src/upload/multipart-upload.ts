import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import type { Context } from 'koa';
import type { LocationConfig } from '../config/types';
import { FormBodyBuilder } from '../protocol/form-body';
import { HttpError } from '../protocol/http-errors';
import { bodyError, storageError } from '../store/store-errors';
import { MultipartParser, MultipartSyntaxError, type MultipartEvent } from '../protocol/multipart-parser';
import { applyPartHeader, emptyPartHeaders, extractBoundary, FieldFilter, tameArrayName, type PartHeaders } from '../protocol/multipart-headers';
import { FileDigests, type DigestName } from '../store/digests';
import { ReadRateLimit } from '../store/rate-limit';
import { unlinkIfOwned, type FileId } from '../store/files';
import type { OwnFile } from '../store/temp-names';
import { checkOutputLimit, completeRequest } from './complete';
import { receiveBody } from './receive-body';
import { appendFileFields, digestsNeeded, renderAddHeaders, variableLookup, type FileVariables } from './variables';
import { declaredLength, lastRawHeader } from '../http/request';
import type { UploadServices } from './services';
import { uploadObserver } from './observer';
import { finishWriter, SegmentWriter, writeChunk } from '../store/segment-writer';

/**
 * multipart/form-data mode (spec §4, with D1, D2, D5, D11, D14–D16): the body is parsed while it
 * streams in, files go to `<store>/<levels>/<10-digit name>`, and the backend receives the
 * module's generated form (§4.6) with the client's Content-Type unchanged (§5.2).
 */
export async function handleMultipartUpload(ctx: Context, location: LocationConfig, services: UploadServices): Promise<void> {
  const req = ctx.req;
  const contentType = lastRawHeader(req, 'content-type') ?? '';
  const boundary = extractBoundary(contentType);
  if (!boundary.ok) throw new HttpError(400, boundary.reason);
  if (declaredLength(req) === 0) throw new HttpError(400, 'empty request body');

  const upload = new MultipartUpload(ctx, location, services, boundary.boundary);
  let form: Buffer;
  try {
    const progress = uploadObserver(ctx);
    progress?.began?.({ session: false, created: true });
    await receiveBody(req, ctx.res, new MultipartSink(upload, location.limitRate, progress ? (n) => progress.bytes(n) : undefined), location);
    form = upload.finish();
  } catch (err) {
    // The request failed before a hand-off (400, 413, 503, 507, disconnect): no file of it stays.
    await upload.abort();
    throw bodyError(err);
  }
  await completeRequest(ctx, location, form, null, upload.addHeaders, () => upload.removeFiles());
}

const fieldFilters = new WeakMap<LocationConfig, FieldFilter>();

function fieldFilter(location: LocationConfig): FieldFilter {
  let filter = fieldFilters.get(location);
  if (!filter) fieldFilters.set(location, (filter = new FieldFilter(location.passFormFields)));
  return filter;
}


interface FilePart {
  kind: 'file';
  path: string;
  handle: FileHandle | null;
  /** Writes the part's data (the same writer as segments'); null once closed. */
  writer: SegmentWriter | null;
  digests: FileDigests;
  /** upload_max_file_size was exceeded: the file is gone, the rest of the part is discarded. */
  skipped: boolean;
  /** Form position before this file's set-fields (rolled back to when the file is dropped). */
  checkpoint: number;
  vars: FileVariables;
}

interface FieldPart {
  kind: 'field';
  /** Passed to the backend (else its data is discarded). */
  passed: boolean;
}

/** The state of one multipart request while its body streams through the parser. */
class MultipartUpload {
  readonly form: FormBodyBuilder;
  /** `upload_add_header` results, accumulated per part (§8: duplicates are the module's behaviour). */
  readonly addHeaders: Array<[string, string]> = [];
  private readonly parser: MultipartParser;
  private readonly filter: FieldFilter;
  private readonly digestNames: ReadonlySet<DigestName>;
  /** Files this request created and that are still in the store (path → identity): only these are ever deleted. */
  private readonly files = new Map<string, FileId>();
  private fileNumber = 0;
  private headers: PartHeaders = emptyPartHeaders();
  private part: FilePart | FieldPart | null = null;
  private aborted = false;
  /** The chunk being processed; abort() waits for it, so no file is created after the clean-up. */
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: Context,
    private readonly location: LocationConfig,
    private readonly services: UploadServices,
    boundary: string,
  ) {
    this.form = new FormBodyBuilder(boundary);
    this.parser = new MultipartParser(boundary, { maxHeaderLineLength: Math.max(0, location.maxPartHeaderLen - 1) });
    this.filter = fieldFilter(location);
    this.digestNames = digestsNeeded(location);
  }

  /** Parses one chunk of the body and acts on what it completes (one chunk at a time). */
  take(chunk: Buffer): Promise<void> {
    if (this.aborted) return Promise.reject(new HttpError(400, 'the upload was aborted'));
    const step = this.process(chunk);
    this.inFlight = step.catch(() => undefined);
    return step;
  }

  private async process(chunk: Buffer): Promise<void> {
    let events: MultipartEvent[];
    try {
      events = this.parser.write(chunk);
    } catch (err) {
      if (err instanceof MultipartSyntaxError) throw new HttpError(400, err.message);
      throw err;
    }
    for (const event of events) await this.on(event);
  }

  private async on(event: MultipartEvent): Promise<void> {
    switch (event.type) {
      case 'partBegin':
        this.headers = emptyPartHeaders();
        return;
      case 'header': {
        const result = applyPartHeader(this.headers, event.line);
        if (!result.ok) throw new HttpError(400, result.reason);
        return;
      }
      case 'headersEnd':
        return this.startPart();
      case 'data':
        return this.partData(event.data);
      case 'partEnd':
        return this.endPart();
      case 'end':
        return;
    }
  }

  private lookup(vars: FileVariables | null) {
    return variableLookup(this.ctx.req, vars);
  }

  /** D15: the real bytes, counted once as the form grows; over the limit is an error, never a silent drop. */
  private checkOutputLimit(): void {
    checkOutputLimit(this.form.length, this.location);
  }

  /** §4.4: a part with a (path-stripped) file name is a file, anything else a field. */
  private async startPart(): Promise<void> {
    const { location } = this;
    const h = this.headers;
    if (h.fileName !== '') {
      this.fileNumber++;
      let created: OwnFile;
      try {
        created = await this.services.counter.createFile(location.store.dir, location.store.levels, location.storeAccess, location.fsync);
      } catch (err) {
        throw storageError(err);
      }
      this.files.set(created.path, created.fileId);
      const fieldName = location.tameArrays && location.setFormFields.length > 0 ? tameArrayName(h.fieldName) : h.fieldName;
      const vars: FileVariables = {
        fieldName,
        fileName: h.fileName,
        contentType: h.contentType,
        tmpPath: created.path,
        fileNumber: this.fileNumber,
        contentRange: 'bytes 0-0/0',
      };
      const digests = new FileDigests(this.digestNames);
      const writer = new SegmentWriter({
        handle: created.handle, start: 0, expectedLength: null, compare: [], digesters: digests.digesters(),
        limitRate: 0, softLimit: location.maxFileSize,
        flush: location.fsync ? () => created.handle.datasync() : undefined,
      });
      const part: FilePart = {
        kind: 'file', path: created.path, handle: created.handle, writer, digests,
        skipped: false, checkpoint: this.form.checkpoint(), vars,
      };
      this.part = part;
      appendFileFields(this.form, location.setFormFields, this.lookup(vars));
      this.checkOutputLimit();
      this.addHeaders.push(...renderAddHeaders(location, this.lookup(vars)));
      return;
    }
    const passed = this.filter.passes(h.fieldName);
    this.part = { kind: 'field', passed };
    if (passed) {
      this.form.appendField(h.fieldName, '');
      this.checkOutputLimit();
    }
    const vars: FileVariables = {
      fieldName: h.fieldName, fileName: '', contentType: h.contentType, tmpPath: '',
      fileNumber: this.fileNumber, contentRange: 'bytes 0-0/0',
    };
    this.addHeaders.push(...renderAddHeaders(location, this.lookup(vars)));
  }

  private async partData(data: Buffer): Promise<void> {
    const part = this.part;
    if (!part) return;
    if (part.kind === 'field') {
      if (!part.passed) return;
      // Copied: the chunk is the request's buffer, a field value may be tiny.
      this.form.appendFieldData(Buffer.from(data));
      this.checkOutputLimit();
      return;
    }
    if (part.skipped) return;
    await writeChunk(part.writer!, data);
    if (part.writer!.overLimit) {
      // §4.8: soft limit: the file is deleted, its fields rolled back, the request goes on.
      part.skipped = true;
      await this.dropFile(part);
      this.form.rollback(part.checkpoint);
    }
  }

  private async endPart(): Promise<void> {
    const part = this.part;
    this.part = null;
    if (!part || part.kind === 'field' || part.skipped) return;
    const handle = part.handle!;
    const writer = part.writer!;
    part.handle = null;
    part.writer = null;
    try {
      await finishWriter(writer);
    } finally {
      await handle.close();
    }
    const { vars } = part;
    vars.digests = part.digests.finish();
    vars.size = writer.received;
    vars.contentRange = `bytes 0-${writer.received}/${writer.received}`;
    appendFileFields(this.form, this.location.aggregateFormFields, this.lookup(vars));
    this.checkOutputLimit();
  }

  private async dropFile(part: FilePart): Promise<void> {
    const handle = part.handle;
    part.handle = null;
    part.writer?.destroy();
    part.writer = null;
    await handle?.close().catch(() => undefined);
    const fileId = this.files.get(part.path);
    if (fileId !== undefined) await unlinkIfOwned(part.path, fileId);
    this.files.delete(part.path);
  }

  /** The whole body was read: the generated form, or 400 for a truncated body (D16). */
  finish(): Buffer {
    if (!this.parser.complete) {
      throw new HttpError(400, 'multipart body incomplete: it ends without the closing boundary delimiter');
    }
    this.checkOutputLimit();
    return this.form.finish();
  }

  /** Removes every file of the request (upload_cleanup). */
  async removeFiles(): Promise<void> {
    for (const [file, fileId] of [...this.files]) {
      await unlinkIfOwned(file, fileId).catch(() => undefined);
      this.files.delete(file);
    }
  }

  /** The request failed: the open file is closed, and every file of the request removed. */
  async abort(): Promise<void> {
    this.aborted = true;
    await this.inFlight;
    const part = this.part;
    this.part = null;
    if (part?.kind === 'file') {
      const handle = part.handle;
      part.handle = null;
      part.writer?.destroy();
      part.writer = null;
      await handle?.close().catch(() => undefined);
    }
    await this.removeFiles();
  }
}


/** Feeds the request body to the upload, with backpressure and `upload_limit_rate`. */
class MultipartSink extends Writable {
  private taken = 0;
  private readonly rateLimit: ReadRateLimit;

  constructor(
    private readonly upload: MultipartUpload,
    limitRate: number,
    /** Told the body bytes taken so far after every chunk (upload progress). */
    private readonly onReceived?: (received: number) => void,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.rateLimit = new ReadRateLimit(limitRate);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.step(chunk).then(() => callback(), callback);
  }

  private async step(chunk: Buffer): Promise<void> {
    this.taken += chunk.length;
    this.onReceived?.(this.taken);
    await this.upload.take(chunk);
    await this.rateLimit.admit(this.taken);
  }
}
