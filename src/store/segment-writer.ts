import { Writable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import type { ByteRange } from '../protocol/range-set';
import { HttpError } from '../protocol/http-errors';
import { ReadRateLimit } from './rate-limit';
import { readAt, writeAllAt } from './files';

/**
 * Writes one chunk to a writer; resolves once it took it (which may mean: once it wrote it). A
 * failure rejects here (the writer's 'error' event is then not needed).
 */
export function writeChunk(writer: Writable, chunk: Buffer): Promise<void> {
  if (writer.listenerCount('error') === 0) writer.on('error', () => undefined);
  return new Promise((resolve, reject) => writer.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** Ends a writer; resolves once everything is written (and flushed, when it flushes). */
export function finishWriter(writer: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    writer.once('error', reject);
    writer.end(() => resolve());
  });
}

/** Something that digests bytes in order (a crypto Hash, or our CRC-32 accumulator). */
export interface Digester {
  update(data: Buffer): unknown;
}

export interface SegmentWriterOptions {
  /** Open data file; null when there is nothing to write to (bytes are only counted and digested). */
  handle: FileHandle | null;
  /** File offset of the body's first byte. */
  start: number;
  /** Exact body length the request promised (range length); more bytes → 416. Null: unknown. */
  expectedLength: number | null;
  /** Absolute ranges already acknowledged: their bytes are compared, never rewritten (D4). */
  compare: readonly ByteRange[];
  /** Digesters fed with every body byte in order. */
  digesters: readonly Digester[];
  /** upload_limit_rate in bytes/s (0 = none): by whole second t, at most R·(t+1) bytes are taken. */
  limitRate: number;
  /** Soft size limit (unranged raw, upload_max_file_size): past it, writing stops and `overLimit` is set. 0 = none. */
  softLimit: number;
  /** Checked before every write: throws when the segment may no longer write (a lost reservation). */
  beforeWrite?: () => void;
  /** fdatasync when the body is complete (D23); concurrent segments of one file share it. */
  flush?: () => Promise<void>;
  /** Told the body bytes taken so far after every chunk (upload progress; must be cheap). */
  onReceived?: (received: number) => void;
}

/**
 * Body bytes all writers together may hold: gathered from the socket, or in a write not yet done.
 * Each writer gathers up to its share of it (at least 64 KiB, at most 1 MiB) before writing, so a
 * lone large upload gets large writes and 128 concurrent ones small ones; past the budget a
 * writer writes what it has at once and takes more only when that write is done (backpressure
 * reaches the socket). Memory is bounded by this budget, not by the number of requests.
 */
const BUDGET = 16 * 1024 * 1024;
const MIN_WRITE = 64 * 1024;
const MAX_WRITE = 1024 * 1024;
let held = 0;
let writers = 0;

function writeSize(): number {
  return Math.max(MIN_WRITE, Math.min(MAX_WRITE, Math.floor(BUDGET / Math.max(1, writers) / 2)));
}

/**
 * Writes a request body at absolute file offsets without buffering it whole: socket chunks are
 * gathered into positional writev calls of the writer's share of the budget. Acknowledged bytes
 * are read back and compared instead (identical → fine; different → 409 and the caller records
 * nothing).
 */
export class SegmentWriter extends Writable {
  /** Body bytes taken so far. */
  received = 0;
  overLimit = false;
  private readonly rateLimit: ReadRateLimit;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** File offset of the first pending byte. */
  private pendingAt: number;

  constructor(private readonly options: SegmentWriterOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.rateLimit = new ReadRateLimit(options.limitRate);
    this.pendingAt = options.start;
    writers++;
    this.once('close', () => writers--);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.take([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.take(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.writePending()
      .then(() => (this.options.handle && this.options.flush ? this.options.flush() : undefined))
      .then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    held -= this.drop().length;
    callback(error);
  }

  private async take(buffers: Buffer[]): Promise<void> {
    const { expectedLength, digesters, softLimit } = this.options;
    let length = 0;
    for (const b of buffers) length += b.length;
    this.received += length;
    if (expectedLength !== null && this.received > expectedLength) {
      throw new HttpError(416, `request body is longer than the range (${expectedLength} bytes)`);
    }
    this.options.onReceived?.(this.received);
    for (const d of digesters) for (const b of buffers) d.update(b);
    if (softLimit > 0 && this.received > softLimit) {
      this.overLimit = true;
      held -= this.drop().length;
    }
    if (!this.overLimit && this.options.handle) {
      this.pending.push(...buffers);
      this.pendingBytes += length;
      held += length;
      if (this.pendingBytes >= writeSize() || held > BUDGET) await this.writePending();
    }
    await this.rateLimit.admit(this.received);
  }

  /** Takes the gathered bytes out of the writer (they stay counted in `held` until written). */
  private drop(): { buffers: Buffer[]; length: number; at: number } {
    const out = { buffers: this.pending, length: this.pendingBytes, at: this.pendingAt };
    this.pendingAt += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }

  private async writePending(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const { buffers, length, at } = this.drop();
    try {
      await this.store(buffers, at, length);
    } finally {
      held -= length;
    }
  }

  private async store(buffers: Buffer[], position: number, length: number): Promise<void> {
    const handle = this.options.handle!;
    const span = { start: position, end: position + length - 1 };
    const overlapping = this.options.compare.filter((r) => r.start <= span.end && span.start <= r.end);
    if (overlapping.length === 0) return this.writeAt(handle, buffers, position);
    // Rare path (a retried or overlapping segment): split the batch along acknowledged ranges.
    const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers, length);
    let cursor = position;
    for (const r of overlapping) {
      const from = Math.max(r.start, position);
      const to = Math.min(r.end, span.end);
      if (from > cursor) await this.writeAt(handle, [data.subarray(cursor - position, from - position)], cursor);
      const expected = data.subarray(from - position, to - position + 1);
      const actual = await readAt(handle, expected.length, from);
      if (!actual.equals(expected)) {
        throw new HttpError(409, `bytes ${from}-${to} differ from the bytes already received`);
      }
      cursor = to + 1;
    }
    if (cursor <= span.end) await this.writeAt(handle, [data.subarray(cursor - position)], cursor);
  }

  private writeAt(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
    this.options.beforeWrite?.();
    return writeAllAt(handle, buffers, position);
  }
}

