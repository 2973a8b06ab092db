import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { hashedRelativePath } from '../protocol/hash-path';
import { MemoryLocker } from './memory-locker';
import { checkGuards, updateInProcess, type Change, type Lease, type SessionRecord, type SessionStore } from './types';

const SUFFIX = '.state.json';

/**
 * Session records as one JSON file each, `<dir>/<levels>/<id>.state.json`, replaced atomically
 * (write a temporary file, fsync, rename, fsync the directory) so a `kill -9` at any instant
 * leaves either the old or the new record (D23). One process owns the directory: `update` is
 * atomic among the requests of this process (a per-id in-process lock), not across processes.
 */
export class FileSessionStore implements SessionStore {
  private readonly updates = new MemoryLocker();

  constructor(
    private readonly dir: string,
    private readonly levels: readonly number[],
    private readonly durable: boolean,
    private readonly fileMode = 0o600,
  ) {}

  private pathOf(id: string): string {
    return path.join(this.dir, hashedRelativePath(id, this.levels) + SUFFIX);
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.pathOf(id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return JSON.parse(text) as SessionRecord;
  }

  async put(record: SessionRecord, guards?: readonly Lease[]): Promise<void> {
    checkGuards(guards);
    const target = this.pathOf(record.id);
    const dir = path.dirname(target);
    await makeDirectory(dir, this.durable);
    // A short temporary name: `<id>.state.json.<hex>.tmp` would pass NAME_MAX (255) for long ids.
    const temp = path.join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await fs.open(temp, 'w', this.fileMode);
    try {
      await handle.writeFile(JSON.stringify(record));
      if (this.durable) await handle.datasync();
    } finally {
      await handle.close();
    }
    try {
      await fs.rename(temp, target);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
    if (this.durable) await syncDirectory(dir);
  }

  async delete(id: string, guards?: readonly Lease[]): Promise<void> {
    checkGuards(guards);
    const target = this.pathOf(id);
    await fs.rm(target, { force: true });
    if (this.durable) await syncDirectory(path.dirname(target)).catch(() => undefined);
  }

  update<T>(id: string, decide: (current: SessionRecord | undefined) => Change<T>, guards?: readonly Lease[]): Promise<T> {
    return updateInProcess(this, this.updates, id, decide, guards);
  }

  async *ids(): AsyncIterable<string> {
    yield* walk(this.dir);
  }

  /** Removes temporary files a crash left mid-`put` (older than `olderThanMs`: another instance may be writing). */
  async sweepTemporaries(olderThanMs = 60_000): Promise<number> {
    let removed = 0;
    for await (const file of walkFiles(this.dir)) {
      if (!TEMPORARY.test(file)) continue;
      const stat = await fs.stat(file).catch(() => null);
      if (stat && Date.now() - stat.mtimeMs > olderThanMs) {
        await fs.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async close(): Promise<void> {}
}

const TEMPORARY = /(^|[\\/])\.[0-9a-f]{12}\.tmp$/;

async function* walk(dir: string): AsyncIterable<string> {
  for await (const file of walkFiles(dir)) {
    const name = path.basename(file);
    if (name.endsWith(SUFFIX)) yield name.slice(0, -SUFFIX.length);
  }
}

async function* walkFiles(dir: string): AsyncIterable<string> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(full);
    else yield full;
  }
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
