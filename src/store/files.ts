/**
 * Data files with one owner each. Every file the gateway writes is created with O_EXCL and known
 * by its identity (inode number); it is opened for writing and deleted only while the name still
 * has that identity. So two uploads that end up with the same name (a Session-ID equal to a
 * 10-digit temporary name, a single-shot upload and a resumable session of one id) can never
 * write into, or delete, each other's file: one of them is refused instead.
 */
import { promises as fs, constants as fsConstants, readSync, writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** A file's identity: its inode number (exact, as a decimal string). */
export type FileId = string;

export async function fileIdOf(handle: FileHandle): Promise<FileId> {
  return String((await handle.stat({ bigint: true })).ino);
}

/**
 * `mkdir -p`, and when `durable`, fsync the parent of every directory it created, so the new
 * entries survive a power cut (D23).
 */
export async function makeDirectory(dir: string, durable: boolean): Promise<void> {
  const firstCreated = await fs.mkdir(dir, { recursive: true });
  if (!durable || !firstCreated) return;
  for (let d = dir; ; d = path.dirname(d)) {
    await syncDirectory(path.dirname(d));
    if (d === firstCreated) break;
  }
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Thrown by `createExclusive` when the name is taken (`EEXIST`). */
export class NameTakenError extends Error {
  constructor(readonly file: string) {
    super(`the store already holds a file named ${path.basename(file)}`);
    this.name = 'NameTakenError';
  }
}

/**
 * Creates `file` (and its directories) exclusively, read-write with `mode`; with `durable`, the new
 * directory entry is on disk before this resolves (D23: before any of its bytes are acknowledged).
 */
export async function createExclusive(file: string, mode: number, durable: boolean): Promise<{ handle: FileHandle; fileId: FileId }> {
  const dir = path.dirname(file);
  await makeDirectory(dir, durable);
  let handle: FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new NameTakenError(file);
    throw err;
  }
  try {
    const fileId = await fileIdOf(handle);
    if (durable) await syncDirectory(dir);
    return { handle, fileId };
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(file, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The identity of the file now at `file`, or null when there is none. */
export async function fileIdAt(file: string): Promise<FileId | null> {
  try {
    return String((await fs.stat(file, { bigint: true })).ino);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Deletes `file` only if it is still the file `fileId` (a name whose file was moved away and
 * replaced belongs to someone else now). Nothing else creates a file over an existing name
 * (O_EXCL everywhere), so between the check and the unlink the name cannot change hands.
 */
export async function unlinkIfOwned(file: string, fileId: FileId): Promise<boolean> {
  if ((await fileIdAt(file)) !== fileId) return false;
  try {
    await fs.unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Opens `file` read-write if it is still the file `fileId`; null when it is gone or another file now. */
export async function openOwned(file: string, fileId: FileId): Promise<FileHandle | null> {
  let handle: FileHandle;
  try {
    handle = await fs.open(file, fsConstants.O_RDWR);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if ((await fileIdOf(handle).catch(() => null)) === fileId) return handle;
  await handle.close();
  return null;
}

/**
 * Group commit of fdatasync: `flush()` resolves after a sync that started after the call, and
 * callers that arrive while one runs share the next one (one flush for all of them).
 */
export class Flusher {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly sync: () => Promise<void>) {}

  flush(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const next = this.running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.queued = null;
        return this.start();
      });
    this.queued = next;
    return next;
  }

  /** Resolves once no flush is running or queued. */
  async idle(): Promise<void> {
    while (this.queued || this.running) await (this.queued ?? this.running)!.catch(() => undefined);
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.sync().finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }
}

/**
 * Writes up to this many bytes from the event loop itself, as nginx's workers write (blocking
 * pwrite unless `aio threads`): a small write into the page cache is a short memory copy, and
 * handing it to libuv's thread pool costs far more than the copy (measured here: 16 KiB written
 * with 5 µs of CPU inline, 30-60 µs through the pool). Larger writes go to the pool, where they
 * overlap with reading the socket; flushes (fdatasync), which wait for the disk, too.
 */
export const INLINE_WRITE_MAX = 64 * 1024;

/** Writes all of `buffers` at `position` (positional writev until nothing is left). */
export async function writeAllAt(handle: FileHandle, buffers: readonly Buffer[], position: number): Promise<void> {
  let pending = buffers as Buffer[];
  let at = position;
  let total = 0;
  for (const b of buffers) total += b.length;
  while (pending.length > 0) {
    const written = total > INLINE_WRITE_MAX ? (await handle.writev(pending, at)).bytesWritten : writevSync(handle.fd, pending, at);
    at += written;
    pending = dropBytes(pending, written);
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

/** Reads exactly `length` bytes at `position` (fewer only at the end of the file); inline, as `writeAllAt` writes. */
export async function readAt(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = readSync(handle.fd, out, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return out.subarray(0, filled);
}

/**
 * The largest file the file system of `dir` can hold (ext4: 16 TiB; tmpfs, XFS: more than the
 * 2^53−1 bytes a range may name), found with ftruncate on a sparse probe file (no space used).
 */
export async function probeMaxFileSize(dir: string): Promise<number> {
  const file = path.join(dir, `.upload-gateway-size-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await fs.open(file, 'wx', 0o600);
  const fits = async (size: number): Promise<boolean> => {
    try {
      await handle.truncate(size);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EFBIG' || code === 'EINVAL') return false;
      throw err;
    }
  };
  try {
    let lo = 0;
    let hi = Number.MAX_SAFE_INTEGER;
    if (await fits(hi)) return hi;
    while (hi - lo > 1) {
      const mid = Math.floor(lo + (hi - lo) / 2);
      if (await fits(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  } finally {
    await handle.close();
    await fs.rm(file, { force: true });
  }
}

/** Temporary files of `writeFileAtomically` a crash left behind (`.<12 hex>.tmp`). */
export const ATOMIC_TEMPORARY = /(^|[\\/])\.[0-9a-f]{12}\.tmp$/;

/**
 * Writes `data` as the whole content of `file`, atomically: a temporary file beside it (created
 * with O_EXCL), then a rename; `durable`: the data and the directory are flushed too.
 */
export async function writeFileAtomically(file: string, data: Buffer, options: { fileMode: number; durable: boolean }): Promise<void> {
  const dir = path.dirname(file);
  await makeDirectory(dir, options.durable);
  // A short temporary name: `<name>.<hex>.tmp` would pass NAME_MAX (255) for long names.
  const temp = path.join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', options.fileMode);
  try {
    await writeAllAt(handle, [data], 0);
    if (options.durable) await handle.datasync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  if (options.durable) await syncDirectory(dir);
}
