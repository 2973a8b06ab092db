/**
 * The file engine's session table: the sessions of one `upload_state_store`, held in memory and
 * backed by their journals (`journal.ts`). Each session has a turn (an in-process queue) for its
 * changes; a change reaches the table only after its journal append succeeded. Bounded: idle
 * sessions beyond `capacity` leave memory and are reloaded from their journal when needed, and at
 * most `openJournals` journals stay open. Records of earlier versions (`<id>.state.json`) are
 * migrated to journals on first use.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { hashedRelativePath } from '../protocol/hash-path';
import type { ByteRange } from '../protocol/range-set';
import { applyRecord, replay, snapshotRecords, type JournalRecord, type SessionRecord, type SessionState } from '../session/model';
import { fileIdAt } from '../store/files';
import { storageError } from '../store/store-errors';
import type { EnginePolicy } from './engine';
import { Journal, JOURNAL_TEMPORARY, readJournal, removeJournal, writeJournalAtomically } from './journal';
import { IGNORE_STATE, timed, type StateObserver } from './observer';

export const JOURNAL_SUFFIX = '.journal';
/** The record files of earlier versions (one JSON record per session), migrated on first use. */
export const LEGACY_SUFFIX = '.state.json';

export interface Entry {
  readonly id: string;
  state: SessionState;
  journal: Journal | null;
  /** Ranges reserved by segments in flight. */
  readonly inFlight: Set<ByteRange>;
  /** The end of the session's turn queue. */
  tail: Promise<unknown>;
  /** Operations and tickets using the entry: it stays in memory while pinned. */
  pins: number;
  lastUsed: number;
}

export interface SessionTableOptions {
  /** `upload_state_store` directory and hash levels. */
  dir: string;
  levels: readonly number[];
  /** Sessions kept in memory at most (idle ones beyond are dropped and reloaded from their journal). */
  capacity?: number;
  /** Journals kept open at most. */
  openJournals?: number;
  /** An idle session's journal is closed after this long. */
  idleMs?: number;
  /** Told how long journal appends and fsyncs take (metrics). */
  observer?: StateObserver;
}

export class SessionTable {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly timer: NodeJS.Timeout;
  private readonly capacity: number;
  private readonly openJournals: number;
  private readonly idleMs: number;
  private readonly observer: StateObserver;

  constructor(private readonly options: SessionTableOptions) {
    this.observer = options.observer ?? IGNORE_STATE;
    this.capacity = options.capacity ?? 10_000;
    this.openJournals = options.openJournals ?? 256;
    this.idleMs = options.idleMs ?? 15_000;
    this.timer = setInterval(() => void this.trim(), Math.min(5000, this.idleMs));
    this.timer.unref();
  }

  journalPath(id: string): string {
    return path.join(this.options.dir, hashedRelativePath(id, this.options.levels) + JOURNAL_SUFFIX);
  }

  /** The entry of `id` when it is in memory (a ticket pins its entry, so it is there). */
  get(id: string): Entry | undefined {
    return this.entries.get(id);
  }

  /**
   * Runs `visit` in the turn of every stored session whose journal was written before `olderThan`
   * (or that is in memory, or still a legacy record file); removes temporaries a crash left
   * mid-write. Returns how many visits returned true. `passed`, when given, is told the state of
   * each younger journal (read, not loaded).
   */
  async visitStored(olderThan: number, visit: (entry: Entry) => Promise<boolean>, passed?: (state: SessionState) => void): Promise<number> {
    let count = 0;
    for await (const file of walkFiles(this.options.dir)) {
      const name = path.basename(file);
      if (JOURNAL_TEMPORARY.test(name)) {
        const stat = await fs.stat(file).catch(() => null);
        if (stat && Date.now() - stat.mtimeMs > 60_000) await fs.rm(file, { force: true });
        continue;
      }
      const suffix = name.endsWith(JOURNAL_SUFFIX) ? JOURNAL_SUFFIX : name.endsWith(LEGACY_SUFFIX) ? LEGACY_SUFFIX : null;
      if (!suffix) continue;
      const id = name.slice(0, -suffix.length);
      if (!this.entries.has(id) && suffix === JOURNAL_SUFFIX) {
        const stat = await fs.stat(file).catch(() => null);
        if (!stat) continue;
        if (stat.mtimeMs > olderThan) {
          if (passed) passed(replay((await readJournal(file).catch(() => null))?.records ?? []));
          continue;
        }
      }
      const entry = await this.pin(id).catch(() => null);
      if (!entry) continue;
      try {
        if (await this.turn(entry, () => visit(entry))) count++;
      } finally {
        entry.pins--;
      }
    }
    return count;
  }

  /** Sessions in memory and open journals (for tests). */
  get loaded(): { sessions: number; journals: number } {
    let journals = 0;
    for (const e of this.entries.values()) if (e.journal) journals++;
    return { sessions: this.entries.size, journals };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.loading.values()].map((p) => p.catch(() => undefined)));
    for (const entry of this.entries.values()) {
      await entry.tail.catch(() => undefined);
      await entry.journal?.close();
      entry.journal = null;
    }
    this.entries.clear();
  }

  /** The session's entry, loaded if needed, pinned (the caller unpins). */
  async pin(id: string): Promise<Entry> {
    let entry = this.entries.get(id);
    if (!entry) {
      let pending = this.loading.get(id);
      if (!pending) {
        pending = this.load(id)
          .then((loaded) => {
            this.entries.set(id, loaded);
            return loaded;
          })
          .finally(() => this.loading.delete(id));
        this.loading.set(id, pending);
        void pending.then(() => this.trim()).catch(() => undefined);
      }
      entry = await pending.catch((err) => {
        throw storageError(err, 'the session state store');
      });
    }
    entry.pins++;
    entry.lastUsed = Date.now();
    return entry;
  }

  private async load(id: string): Promise<Entry> {
    const file = this.journalPath(id);
    const stored = await readJournal(file);
    let state: SessionState = {};
    let journal: Journal | null = null;
    if (!stored) {
      state = await this.migrateLegacy(id, file);
    } else if (stored.records.length === 0) {
      await removeJournal(file, true); // not even its header survived: there was no session
    } else {
      state = replay(stored.records);
      // Cut a torn tail now, so appends always follow a good prefix.
      if (stored.length > stored.goodLength) journal = await Journal.open(file, stored.goodLength);
    }
    return { id, state, journal, inFlight: new Set(), tail: Promise.resolve(), pins: 0, lastUsed: Date.now() };
  }

  /** A record file of an earlier version (one JSON object) becomes a journal. */
  private async migrateLegacy(id: string, journalFile: string): Promise<SessionState> {
    const legacy = path.join(this.options.dir, hashedRelativePath(id, this.options.levels) + LEGACY_SUFFIX);
    let old: Omit<SessionRecord, 'fileId' | 'replaces'>;
    try {
      old = JSON.parse(await fs.readFile(legacy, 'utf8'));
    } catch {
      return {};
    }
    const mode = (await fs.stat(legacy)).mode & 0o777;
    const record: SessionRecord = { ...old, fileId: await fileIdAt(old.dataPath), replaces: null };
    await writeJournalAtomically(journalFile, [{ t: 'h', r: record }], { fileMode: mode, durable: true });
    await fs.rm(legacy, { force: true });
    return { record };
  }

  /** Runs `fn` in the session's turn (changes of one session one at a time, in arrival order). */
  turn<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
    entry.pins++;
    const run = entry.tail.then(fn);
    entry.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run.finally(() => {
      entry.pins--;
    });
  }

  /** Appends to the session's journal and, once written, applies to the table (in the caller's turn). */
  async append(entry: Entry, records: readonly JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      if (!entry.journal) entry.journal = await Journal.open(this.journalPath(entry.id));
      const journal = entry.journal;
      await timed(() => journal.append(records), (seconds) => this.observer.journalAppended(seconds));
    } catch (err) {
      throw storageError(err, 'the session state store');
    }
    entry.state = records.reduce(applyRecord, entry.state);
  }

  async sync(entry: Entry): Promise<void> {
    try {
      const journal = entry.journal;
      if (journal) await timed(() => journal.sync(), (seconds) => this.observer.synced('journal', seconds));
    } catch (err) {
      throw storageError(err, 'the session state store');
    }
  }

  /** Rewrites the journal as one snapshot of the session (in its turn). */
  async compact(entry: Entry, policy: EnginePolicy): Promise<void> {
    if (!entry.journal) entry.journal = await Journal.open(this.journalPath(entry.id));
    await entry.journal.rewrite(snapshotRecords(entry.state), policy);
  }

  /** The session becomes `state` (a tombstone, or nothing: the journal goes), in its turn. */
  async replaceState(entry: Entry, state: SessionState, policy: EnginePolicy): Promise<void> {
    await entry.journal?.close();
    entry.journal = null;
    const file = this.journalPath(entry.id);
    if (state.tombstone) await writeJournalAtomically(file, snapshotRecords(state), policy);
    else await removeJournal(file, policy.durable);
    entry.state = state;
  }

  /** Closes the journals of idle sessions and drops idle sessions beyond the capacity. */
  trim(): void {
    const now = Date.now();
    const idle = [...this.entries.values()].filter((e) => e.pins === 0 && e.inFlight.size === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    let open = 0;
    for (const e of this.entries.values()) if (e.journal) open++;
    let excess = this.entries.size - this.capacity;
    for (const entry of idle) {
      const old = now - entry.lastUsed > this.idleMs;
      if (entry.journal && (old || open > this.openJournals)) {
        const journal = entry.journal;
        entry.journal = null;
        open--;
        void journal.close();
      }
      if (excess > 0 || (old && !entry.state.record && !entry.state.tombstone)) {
        this.entries.delete(entry.id);
        excess--;
      }
    }
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
