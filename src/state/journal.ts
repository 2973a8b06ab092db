/**
 * One session's journal file: `<state>/<levels>/<id>.journal`, records appended in order
 * (`session/journal-codec.ts` for the line format). A new journal, and every compaction, is
 * written to a temporary file and renamed over the old one, so a crash leaves the old or the new
 * file whole; appends go at the end of the good prefix, so a crash mid-append leaves at most one
 * torn line, which replay ignores and the next opening cuts off.
 */
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { decodeRecords, encodeRecords } from '../session/journal-codec';
import type { JournalRecord } from '../session/model';
import { ATOMIC_TEMPORARY, Flusher, syncDirectory, writeAllAt, writeFileAtomically } from '../store/files';

export interface JournalOptions {
  /** File mode (`upload_store_access`). */
  fileMode: number;
  /** Written whole files and their directory entries are made durable (D23). */
  durable: boolean;
}

/** The records stored at `file` (its good prefix) and that prefix's length; null when there is no journal. */
export async function readJournal(file: string): Promise<{ records: JournalRecord[]; goodLength: number; length: number } | null> {
  let data: Buffer;
  try {
    data = await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return { ...decodeRecords(data), length: data.length };
}

/** Writes `records` as the whole content of `file`, atomically (temporary file, fsync, rename, fsync the directory). */
export function writeJournalAtomically(file: string, records: readonly JournalRecord[], options: JournalOptions): Promise<void> {
  return writeFileAtomically(file, encodeRecords(records), options);
}

/** Temporary files a crash left behind mid-write. */
export const JOURNAL_TEMPORARY = ATOMIC_TEMPORARY;

/** An open journal, appended to at the end of its good prefix. */
export class Journal {
  private readonly flusher: Flusher;
  /** Records appended since the journal was written whole (compaction threshold). */
  appended = 0;

  private constructor(
    readonly file: string,
    private handle: FileHandle,
    private size: number,
  ) {
    this.flusher = new Flusher(() => this.handle.datasync());
  }

  /** Opens an existing journal for appending; a torn tail beyond `goodLength` (default: none) is cut off first. */
  static async open(file: string, goodLength?: number): Promise<Journal> {
    const handle = await fs.open(file, 'r+');
    try {
      const length = (await handle.stat()).size;
      const good = goodLength ?? length;
      if (length > good) {
        await handle.truncate(good);
        await handle.datasync();
      }
      return new Journal(file, handle, good);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Writes `records` as a new journal (replacing any old one, such as a tombstone) and opens it. */
  static async create(file: string, records: readonly JournalRecord[], options: JournalOptions): Promise<Journal> {
    await writeJournalAtomically(file, records, options);
    return Journal.open(file);
  }

  /**
   * Appends `records` (written, not yet durable: see `sync`). A failed write leaves the journal
   * as it was: the partial line is cut off again.
   */
  async append(records: readonly JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    const data = encodeRecords(records);
    try {
      await writeAllAt(this.handle, [data], this.size);
    } catch (err) {
      await this.handle.truncate(this.size).catch(() => undefined);
      throw err;
    }
    this.size += data.length;
    this.appended += records.length;
  }

  /** Durable up to the last append (D23); concurrent callers share one fdatasync (group commit). */
  sync(): Promise<void> {
    return this.flusher.flush();
  }

  /** Resolves when no sync is running (what was synced before is durable). */
  settled(): Promise<void> {
    return this.flusher.idle();
  }

  /** Replaces the whole journal by `records` (compaction), atomically, and goes on appending to it. */
  async rewrite(records: readonly JournalRecord[], options: JournalOptions): Promise<void> {
    await writeJournalAtomically(this.file, records, options);
    const old = this.handle;
    this.handle = await fs.open(this.file, 'r+');
    this.size = (await this.handle.stat()).size;
    this.appended = 0;
    await old.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

export async function removeJournal(file: string, durable: boolean): Promise<void> {
  await fs.rm(file, { force: true });
  if (durable) await syncDirectory(path.dirname(file)).catch(() => undefined);
}
