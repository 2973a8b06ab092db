import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { hashedRelativePath } from '../protocol/hash-path';
import type { SessionRecord, SessionStore } from './types';

const SUFFIX = '.state.json';

/**
 * Session records as one JSON file each, `<dir>/<levels>/<id>.state.json`, replaced atomically
 * (write a temporary file, fsync, rename, fsync the directory) so a `kill -9` at any instant
 * leaves either the old or the new record (D23).
 */
export class FileSessionStore implements SessionStore {
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

  async put(record: SessionRecord): Promise<void> {
    const target = this.pathOf(record.id);
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true });
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
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

  async delete(id: string): Promise<void> {
    const target = this.pathOf(id);
    await fs.rm(target, { force: true });
    if (this.durable) await syncDirectory(path.dirname(target)).catch(() => undefined);
  }

  async *ids(): AsyncIterable<string> {
    yield* walk(this.dir);
  }

  async close(): Promise<void> {}
}

async function* walk(dir: string): AsyncIterable<string> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.isDirectory()) yield* walk(path.join(dir, entry.name));
    else if (entry.name.endsWith(SUFFIX)) yield entry.name.slice(0, -SUFFIX.length);
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
