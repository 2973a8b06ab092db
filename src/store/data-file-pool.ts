/**
 * Open data files kept across segments, so a session's segments do not each open, check and close
 * its file (issue: a hot path without file-system round trips). Bounded: at most `capacity` files
 * stay open; a file nobody uses is closed after `idleMs`, or earlier when the pool is full, and at
 * once on `evict` (completion, expiry). Each file has its own group-commit flusher: concurrent
 * segments of one file share an fdatasync.
 */
import type { FileHandle } from 'node:fs/promises';
import { Flusher, openOwned, type FileId } from './files';

export interface PooledFile {
  readonly path: string;
  readonly fileId: FileId;
  readonly handle: FileHandle;
  /** fdatasync of this file, shared by concurrent callers. */
  flush(): Promise<void>;
}

interface Entry extends PooledFile {
  users: number;
  lastUsed: number;
}

export class DataFilePool {
  private readonly open = new Map<string, Entry>();
  private readonly opening = new Map<string, Promise<Entry | null>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly capacity = 256,
    private readonly idleMs = 15_000,
    /** Told how long each fdatasync took, in seconds (metrics). */
    private readonly onSync: (seconds: number) => void = () => undefined,
  ) {
    this.timer = setInterval(() => void this.closeIdle(Date.now() - this.idleMs), Math.max(1000, Math.floor(idleMs / 2)));
    this.timer.unref();
  }

  /** The open file `fileId` at `path` (opened if needed); null when the file is gone or replaced. Release it after use. */
  async acquire(path: string, fileId: FileId): Promise<PooledFile | null> {
    const entry = await this.entry(path, fileId);
    if (!entry) return null;
    entry.users++;
    entry.lastUsed = Date.now();
    return entry;
  }

  /** A file its caller just created: pooled and acquired. */
  adopt(path: string, fileId: FileId, handle: FileHandle): PooledFile {
    const previous = this.open.get(path);
    if (previous && previous.users === 0) void this.closeEntry(previous);
    const entry = this.makeEntry(path, fileId, handle);
    entry.users = 1;
    this.open.set(path, entry);
    void this.trim();
    return entry;
  }

  release(file: PooledFile): void {
    const entry = file as Entry;
    entry.users = Math.max(0, entry.users - 1);
    entry.lastUsed = Date.now();
    if (entry.users === 0 && this.open.get(entry.path) !== entry) void this.closeEntry(entry);
  }

  /** Closes the file at `path` once nobody uses it (its session completed, expired or was discarded). */
  async evict(path: string): Promise<void> {
    const entry = this.open.get(path);
    if (!entry) return;
    this.open.delete(path);
    if (entry.users === 0) await this.closeEntry(entry);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.opening.values()]);
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map((e) => this.closeEntry(e)));
  }

  private async entry(path: string, fileId: FileId): Promise<Entry | null> {
    const cached = this.open.get(path);
    if (cached && cached.fileId === fileId) return cached;
    if (cached) await this.evict(path);
    let pending = this.opening.get(path);
    if (!pending) {
      pending = openOwned(path, fileId).then((handle) => {
        if (!handle) return null;
        const entry = this.makeEntry(path, fileId, handle);
        this.open.set(path, entry);
        void this.trim();
        return entry;
      });
      this.opening.set(path, pending);
      void pending.finally(() => this.opening.delete(path)).catch(() => undefined);
    }
    const entry = await pending;
    return entry && entry.fileId === fileId ? entry : null;
  }

  private makeEntry(path: string, fileId: FileId, handle: FileHandle): Entry {
    const flusher = new Flusher(async () => {
      const started = performance.now();
      try {
        await handle.datasync();
      } finally {
        this.onSync((performance.now() - started) / 1000);
      }
    });
    return { path, fileId, handle, users: 0, lastUsed: Date.now(), flush: () => flusher.flush() };
  }

  private async closeIdle(before: number): Promise<void> {
    for (const entry of [...this.open.values()]) {
      if (entry.users === 0 && entry.lastUsed < before) {
        this.open.delete(entry.path);
        await this.closeEntry(entry);
      }
    }
  }

  /** Over capacity: close the least recently used files nobody is using. */
  private async trim(): Promise<void> {
    if (this.open.size <= this.capacity) return;
    const idle = [...this.open.values()].filter((e) => e.users === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const entry of idle.slice(0, this.open.size - this.capacity)) {
      this.open.delete(entry.path);
      await this.closeEntry(entry);
    }
  }

  private async closeEntry(entry: Entry): Promise<void> {
    await entry.handle.close().catch(() => undefined);
  }
}
