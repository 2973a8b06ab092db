import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { hashedRelativePath } from '../protocol/hash-path';

const LIMIT = 10_000_000_000;

/**
 * nginx's temp-file counter (§4.7): 10-digit zero-padded file names for uploads without a
 * Session-ID, and the numbers behind raw-mode boundaries. Files are created exclusively;
 * on a collision the counter jumps by a pseudo-random amount, as nginx does.
 */
export class TempCounter {
  private next = 1;

  take(): number {
    const n = this.next;
    this.next = (this.next + 1) % LIMIT;
    return n;
  }

  async createFile(dir: string, levels: readonly number[], mode: number): Promise<{ path: string; handle: FileHandle }> {
    for (let attempt = 0; ; attempt++) {
      const name = String(this.take()).padStart(10, '0');
      const file = path.join(dir, hashedRelativePath(name, levels));
      await fs.mkdir(path.dirname(file), { recursive: true });
      try {
        const handle = await fs.open(file, 'wx', mode);
        return { path: file, handle };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 100) throw err;
        this.next = (this.next + 1 + Math.floor(Math.random() * 50_000_000)) % LIMIT;
      }
    }
  }
}
