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

/**
 * Digests of a whole file read from disk (resumable uploads arrive out of order: D6). With
 * `resume`, digests already fed with the file's first `from` bytes continue from there.
 */
export async function digestFile(
  path: string,
  names: Iterable<DigestName>,
  resume?: { digests: FileDigests; from: number },
): Promise<Partial<Record<DigestName, string>>> {
  const digests = resume?.digests ?? new FileDigests(names);
  if (digests.empty) return {};
  const feed = digests.digesters();
  for await (const chunk of createReadStream(path, { start: resume?.from ?? 0, highWaterMark: 1024 * 1024 })) {
    for (const d of feed) d.update(chunk as Buffer);
  }
  return digests.finish();
}

/** A session as the digests know it: its id and when it was created. */
export interface SessionInstance {
  id: string;
  createdAt: number;
}

/**
 * Running digests of sessions whose segments arrive in order, so completing a sequential
 * upload does not re-read the file. Bytes 0..next-1 are acknowledged and never rewritten (D4),
 * so whatever happens later the digest can always be finished from the file at `next`.
 * Only one segment feeds an entry at a time; a failed segment drops it. Bounded in size.
 */
export class InOrderDigests {
  private readonly entries = new Map<string, { next: number; digests: FileDigests; busy: boolean }>();

  constructor(private readonly capacity = 10_000) {}

  /** One entry per session instance: a session started again under the same id starts afresh. */
  private static key(session: SessionInstance): string {
    return `${session.id}\0${session.createdAt}`;
  }

  /** Digests to feed with a segment starting at `start`, or null if it is not the next one. */
  claim(session: SessionInstance, start: number, names: ReadonlySet<DigestName>): FileDigests | null {
    if (names.size === 0) return null;
    const key = InOrderDigests.key(session);
    let entry = this.entries.get(key);
    if (!entry && start === 0) {
      if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
      entry = { next: 0, digests: new FileDigests(names), busy: false };
      this.entries.set(key, entry);
    }
    if (!entry || entry.busy || entry.next !== start) return null;
    entry.busy = true;
    return entry.digests;
  }

  /** The claimed segment is acknowledged up to `end`. */
  commit(session: SessionInstance, end: number): void {
    const entry = this.entries.get(InOrderDigests.key(session));
    if (!entry) return;
    entry.next = end + 1;
    entry.busy = false;
  }

  /** The claimed segment failed: its bytes may be partly digested, so the entry is useless. */
  abandon(session: SessionInstance): void {
    this.entries.delete(InOrderDigests.key(session));
  }

  /** Removes and returns the entry (at completion), unless a segment is feeding it. */
  take(session: SessionInstance): { digests: FileDigests; from: number } | undefined {
    const key = InOrderDigests.key(session);
    const entry = this.entries.get(key);
    this.entries.delete(key);
    return entry && !entry.busy ? { digests: entry.digests, from: entry.next } : undefined;
  }
}
