import { Writable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import type { ByteRange } from '../protocol/range-set';
import { UploadError } from '../protocol/http-errors';
import { ReadRateLimit } from './rate-limit';

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
  /** fdatasync before finishing (D23). */
  durable: boolean;
  /** Told the body bytes taken so far after every chunk (upload progress; must be cheap). */
  onReceived?: (received: number) => void;
}

/**
 * All segment writers share one buffer budget: a lone large segment gets big batches (fewer,
 * larger writes), 128 concurrent ones get small ones, so memory stays flat under load.
 */
const BUFFER_BUDGET = 8 * 1024 * 1024;
let activeWriters = 0;

function bufferShare(): number {
  return Math.max(64 * 1024, Math.min(1024 * 1024, Math.floor(BUFFER_BUDGET / (activeWriters + 1))));
}

/**
 * Writes a request body at absolute file offsets without buffering it whole: each batch of
 * chunks goes out as one positional writev. Acknowledged bytes are read back and compared
 * instead (identical → fine; different → 409 and the caller records nothing).
 */
export class SegmentWriter extends Writable {
  /** Body bytes taken so far. */
  received = 0;
  overLimit = false;
  private readonly rateLimit: ReadRateLimit;

  constructor(private readonly options: SegmentWriterOptions) {
    super({ highWaterMark: bufferShare() });
    activeWriters++;
    this.once('close', () => activeWriters--);
    this.rateLimit = new ReadRateLimit(options.limitRate);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.take([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.take(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const { handle, durable } = this.options;
    if (!handle || !durable) return callback();
    handle.datasync().then(() => callback(), callback);
  }

  private async take(buffers: Buffer[]): Promise<void> {
    const { expectedLength, digesters, softLimit } = this.options;
    let length = 0;
    for (const b of buffers) length += b.length;
    const offset = this.received;
    this.received += length;
    if (expectedLength !== null && this.received > expectedLength) {
      throw new UploadError(416, `request body is longer than the range (${expectedLength} bytes)`);
    }
    this.options.onReceived?.(this.received);
    for (const d of digesters) for (const b of buffers) d.update(b);
    if (softLimit > 0 && this.received > softLimit) this.overLimit = true;
    if (!this.overLimit && this.options.handle) await this.store(buffers, this.options.start + offset, length);
    await this.rateLimit.admit(this.received);
  }

  private async store(buffers: Buffer[], position: number, length: number): Promise<void> {
    const span = { start: position, end: position + length - 1 };
    const overlapping = this.options.compare.filter((r) => r.start <= span.end && span.start <= r.end);
    if (overlapping.length === 0) return writeAll(this.options.handle!, buffers, position);
    // Rare path (a retried or overlapping segment): split the batch along acknowledged ranges.
    const data = buffers.length === 1 ? buffers[0] : Buffer.concat(buffers, length);
    let cursor = position;
    for (const r of overlapping) {
      const from = Math.max(r.start, position);
      const to = Math.min(r.end, span.end);
      if (from > cursor) await writeAll(this.options.handle!, [data.subarray(cursor - position, from - position)], cursor);
      await this.compareWithFile(data.subarray(from - position, to - position + 1), from);
      cursor = to + 1;
    }
    if (cursor <= span.end) await writeAll(this.options.handle!, [data.subarray(cursor - position)], cursor);
  }

  private async compareWithFile(expected: Buffer, position: number): Promise<void> {
    const actual = Buffer.allocUnsafe(expected.length);
    let filled = 0;
    while (filled < actual.length) {
      const { bytesRead } = await this.options.handle!.read(actual, filled, actual.length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled !== expected.length || !actual.equals(expected)) {
      throw new UploadError(409, `bytes ${position}-${position + expected.length - 1} differ from the bytes already received`);
    }
  }
}

async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    at += bytesWritten;
    pending = dropBytes(pending, bytesWritten);
  }
}

function dropBytes(buffers: Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = count;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}
