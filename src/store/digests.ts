import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as zlib from 'node:zlib';
import type { Digester } from './segment-writer';

/** The digests nginx_upload_module can report; each maps to `$upload_file_<name>` (and `_uc`). */
export const DIGEST_NAMES = ['md5', 'sha1', 'sha256', 'sha512', 'crc32'] as const;
export type DigestName = (typeof DIGEST_NAMES)[number];

/** Standard CRC-32 (zlib), accumulated chunk by chunk. */
class Crc32 implements Digester {
  private value = 0;
  update(data: Buffer): this {
    this.value = zlib.crc32(data, this.value);
    return this;
  }
  hex(): string {
    return (this.value >>> 0).toString(16).padStart(8, '0');
  }
}

/** A running set of digests over one file's bytes, in order. */
export class FileDigests {
  private readonly running = new Map<DigestName, Digester & { hex(): string }>();

  constructor(names: Iterable<DigestName>) {
    for (const name of names) {
      if (name === 'crc32') this.running.set(name, new Crc32());
      else {
        const hash = createHash(name);
        this.running.set(name, { update: (b) => hash.update(b), hex: () => hash.digest('hex') });
      }
    }
  }

  get empty(): boolean {
    return this.running.size === 0;
  }

  /** The digesters to feed, in no particular order. */
  digesters(): Digester[] {
    return [...this.running.values()];
  }

  /** Lower-case hex digests (call once). */
  finish(): Partial<Record<DigestName, string>> {
    const out: Partial<Record<DigestName, string>> = {};
    for (const [name, d] of this.running) out[name] = d.hex();
    return out;
  }
}

/** Digests of a whole file read from disk (resumable uploads arrive out of order: D6). */
export async function digestFile(path: string, names: Iterable<DigestName>): Promise<Partial<Record<DigestName, string>>> {
  const digests = new FileDigests(names);
  if (digests.empty) return {};
  const feed = digests.digesters();
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    for (const d of feed) d.update(chunk as Buffer);
  }
  return digests.finish();
}
