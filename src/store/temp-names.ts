import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { hashedRelativePath } from '../protocol/hash-path';
import { createExclusive, NameTakenError, type FileId } from './files';

const LIMIT = 10_000_000_000;

/** A file a request created for itself: only that request deletes it (by its identity). */
export interface OwnFile {
  path: string;
  handle: FileHandle;
  fileId: FileId;
}

/**
 * nginx's temp-file counter (§4.7): 10-digit zero-padded file names for uploads without a
 * Session-ID, and the numbers behind raw-mode boundaries. Files are created exclusively (a name
 * that exists, even a session's file, is never reused); on a collision the counter jumps by a
 * pseudo-random amount, as nginx does.
 */
export class TempCounter {
  private next = 1;

  take(): number {
    const n = this.next;
    this.next = (this.next + 1) % LIMIT;
    return n;
  }

  async createFile(dir: string, levels: readonly number[], mode: number, durable: boolean): Promise<OwnFile> {
    for (let attempt = 0; ; attempt++) {
      const name = String(this.take()).padStart(10, '0');
      const file = path.join(dir, hashedRelativePath(name, levels));
      try {
        return { path: file, ...(await createExclusive(file, mode, durable)) };
      } catch (err) {
        if (!(err instanceof NameTakenError) || attempt > 100) throw err;
        this.next = (this.next + 1 + Math.floor(Math.random() * 50_000_000)) % LIMIT;
      }
    }
  }
}
