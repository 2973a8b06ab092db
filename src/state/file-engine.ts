/**
 * Sessions of one gateway process (`upload_state_store`): the process holds the authoritative
 * session table in memory and appends each change to the session's journal
 * (`<state>/<levels>/<id>.journal`, see `journal.ts`), so a segment's critical section does no
 * file I/O but that append. Hot sessions stay in memory (bounded), cold ones are reloaded from
 * their journal; data files stay open in the shared pool across segments.
 *
 * Each session has a turn (an in-process queue): changes of one session are made one at a time,
 * and a change reaches the memory table only after its journal append succeeded, so a failed
 * append (a full disk) changes nothing. A segment joining a loaded session takes no turn at all.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { hashedRelativePath } from '../protocol/hash-path';
import { retryLater, UploadError } from '../protocol/http-errors';
import type { ByteRange } from '../protocol/range-set';
import {
  applyRecord,
  decideBegin,
  decideCommit,
  decideFinish,
  decideRelease,
  decideSweep,
  isExpired,
  isFileComplete,
  replay,
  snapshotRecords,
  tombstoneOf,
  type Actor,
  type BeginDecision,
  type CompletionRecord,
  type HandoffClaim,
  type JournalRecord,
  type Refusal,
  type SegmentRequest,
  type SessionRecord,
  type SessionState,
} from '../session/model';
import type { DataFilePool } from '../store/data-file-pool';
import { createExclusive, fileIdAt, NameTakenError, openOwned, unlinkIfOwned, type FileId } from '../store/files';
import { storageError } from '../store/store-errors';
import type { CommitOutcome, EnginePolicy, SegmentTicket, SessionEngine, WriteFence } from './engine';
import { Journal, JOURNAL_TEMPORARY, readJournal, removeJournal, writeJournalAtomically } from './journal';
import { IGNORE_STATE, timed, type StateObserver } from './observer';

const SUFFIX = '.journal';
/** The record files of earlier versions (one JSON record per session), migrated on first use. */
const LEGACY_SUFFIX = '.state.json';
/** A journal with this many records appended since it was last written whole is compacted. */
const COMPACT_AFTER = 512;

interface Entry {
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

/** In-process reservations cannot be lost: nothing to check. */
const NO_FENCE: WriteFence = { check() {}, lost: new AbortController().signal };

export interface FileEngineOptions {
  /** `upload_state_store` directory and hash levels. */
  dir: string;
  levels: readonly number[];
  instanceId: string;
  /** Open data files, shared by the gateway's engines. */
  dataFiles: DataFilePool;
  /** Sessions kept in memory at most (idle ones beyond are dropped and reloaded from their journal). */
  capacity?: number;
  /** Journals kept open at most. */
  openJournals?: number;
  /** An idle session's journal is closed after this long. */
  idleMs?: number;
  /** Told about appends, fsyncs and sessions (metrics). */
  observer?: StateObserver;
}

export function refusalError(refusal: Refusal): UploadError {
  return refusal.status === 503 ? retryLater(refusal.reason) : new UploadError(refusal.status, refusal.reason);
}

export function nameTakenError(record: SessionRecord): UploadError {
  return new UploadError(409, `the upload store already holds another upload's file named ${path.basename(record.dataPath)}; use another Session-ID`);
}

export class FileSessionEngine implements SessionEngine {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly actor: Actor;
  private readonly timer: NodeJS.Timeout;
  private readonly capacity: number;
  private readonly openJournals: number;
  private readonly idleMs: number;
  private readonly observer: StateObserver;

  constructor(private readonly options: FileEngineOptions) {
    this.observer = options.observer ?? IGNORE_STATE;
    this.actor = { instanceId: options.instanceId, singleInstance: true };
    this.capacity = options.capacity ?? 10_000;
    this.openJournals = options.openJournals ?? 256;
    this.idleMs = options.idleMs ?? 15_000;
    this.timer = setInterval(() => void this.trim(), Math.min(5000, this.idleMs));
    this.timer.unref();
  }

  journalPath(id: string): string {
    return path.join(this.options.dir, hashedRelativePath(id, this.options.levels) + SUFFIX);
  }

  // -------------------------------------------------------------------------------------------
  // Segments
  // -------------------------------------------------------------------------------------------

  async begin(segment: SegmentRequest, policy: EnginePolicy): Promise<SegmentTicket> {
    const entry = await this.pin(segment.id);
    try {
      const decision = this.decideBegin(entry, segment, policy);
      // The hot path: a loaded session with its data file, joined without a turn.
      if (decision.kind === 'join' && (decision.record.fileId !== null || isFileComplete(decision.record))) {
        return await this.join(entry, decision.reserve, false);
      }
      if (decision.kind === 'refuse') throw refusalError(decision);
      return await this.turn(entry, () => this.beginChanging(entry, segment, policy));
    } catch (err) {
      entry.pins--;
      throw err;
    }
  }

  private decideBegin(entry: Entry, segment: SegmentRequest, policy: EnginePolicy): BeginDecision {
    return decideBegin(entry.state.record, entry.state.tombstone, segment, [...entry.inFlight], Date.now(), policy, this.actor);
  }

  /** A new session, an expired one, or a data file to create: the session changes, under its turn. */
  private async beginChanging(entry: Entry, segment: SegmentRequest, policy: EnginePolicy): Promise<SegmentTicket> {
    for (;;) {
      const decision = this.decideBegin(entry, segment, policy);
      switch (decision.kind) {
        case 'refuse':
          throw refusalError(decision);
        case 'expired':
          await this.sweepSession(entry, policy, Date.now());
          continue;
        case 'join':
          // The header survived a crash that came before the data file's record.
          if (decision.record.fileId === null && !isFileComplete(decision.record)) await this.createDataFile(entry, policy, true);
          return this.join(entry, decision.reserve, false);
        case 'create':
          await this.createSession(entry, decision.record, policy);
          this.observer.sessionOpened();
          return this.join(entry, decision.reserve, true);
      }
    }
  }

  private async join(entry: Entry, reserve: ByteRange, created: boolean): Promise<SegmentTicket> {
    const range = { ...reserve };
    entry.inFlight.add(range);
    try {
      // Records are never changed in place (see applyRecord): the ticket keeps this one as it is.
      const record = entry.state.record!;
      let file = null;
      if (record.fileId !== null) {
        file = await this.options.dataFiles.acquire(record.dataPath, record.fileId).catch((err) => {
          throw storageError(err);
        });
        if (!file && !isFileComplete(record)) {
          throw new UploadError(409, `the data file of session ${record.id} is gone (removed from the store); the upload must start again`);
        }
      }
      return { id: entry.id, record, range, file, created, fence: NO_FENCE };
    } catch (err) {
      entry.inFlight.delete(range);
      throw err;
    }
  }

  /** Writes the new session's header, then creates its data file; on failure the session is undone. */
  private async createSession(entry: Entry, record: SessionRecord, policy: EnginePolicy): Promise<void> {
    // The name must be free, or hold the file a retired session of this id left (D9).
    const existing = await fileIdAt(record.dataPath).catch(() => null);
    if (existing !== null && existing !== record.replaces) throw nameTakenError(record);
    const previous = entry.state;
    await entry.journal?.close();
    entry.journal = null;
    try {
      entry.journal = await Journal.create(this.journalPath(entry.id), [{ t: 'h', r: record }], policy);
    } catch (err) {
      throw storageError(err, 'the session state store');
    }
    entry.state = { record };
    try {
      await this.createDataFile(entry, policy, false);
    } catch (err) {
      await this.undoCreation(entry, previous, policy).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Creates the session's data file with O_EXCL and records its identity. The name may hold the
   * file of a retired session of this id, which makes way (D9); any other file is another
   * upload's, and the session is refused (409). After a crash between the header and the file's
   * record (`recovering`), a file at the name is taken as the one the header announced.
   */
  private async createDataFile(entry: Entry, policy: EnginePolicy, recovering: boolean): Promise<void> {
    const record = entry.state.record!;
    let created: { handle: import('node:fs/promises').FileHandle; fileId: FileId } | null = null;
    for (let attempt = 0; !created; attempt++) {
      try {
        created = await createExclusive(record.dataPath, policy.fileMode, policy.durable);
      } catch (err) {
        if (!(err instanceof NameTakenError)) throw storageError(err);
        const existing = await fileIdAt(record.dataPath);
        if (existing !== null && existing === record.replaces && attempt === 0) {
          await unlinkIfOwned(record.dataPath, existing);
          continue;
        }
        const adopted = recovering && existing !== null ? await openOwned(record.dataPath, existing) : null;
        if (!adopted) throw nameTakenError(record);
        created = { handle: adopted, fileId: existing! };
      }
    }
    try {
      await this.append(entry, [{ t: 'f', f: created.fileId }]);
    } catch (err) {
      await created.handle.close().catch(() => undefined);
      await unlinkIfOwned(record.dataPath, created.fileId).catch(() => undefined);
      throw err;
    }
    this.options.dataFiles.release(this.options.dataFiles.adopt(record.dataPath, created.fileId, created.handle));
  }

  /** A session that never got a byte goes away with its file; a tombstone it was to replace comes back. */
  private async undoCreation(entry: Entry, previous: SessionState, policy: EnginePolicy): Promise<void> {
    const record = entry.state.record;
    if (record?.fileId) {
      await this.options.dataFiles.evict(record.dataPath);
      await unlinkIfOwned(record.dataPath, record.fileId);
    }
    const restore = record?.fileId ? {} : previous.tombstone ? { tombstone: previous.tombstone } : {};
    await this.replaceState(entry, restore, policy);
  }

  async commit(ticket: SegmentTicket, proved: { total: number; meta: SegmentRequest['meta'] }, policy: EnginePolicy): Promise<CommitOutcome> {
    const entry = this.entries.get(ticket.id)!;
    try {
      const outcome = await this.turn(entry, async (): Promise<CommitOutcome> => {
        const end = Math.min(ticket.range.end, proved.total - 1);
        const decision = decideCommit(entry.state.record, { createdAt: ticket.record.createdAt, start: ticket.range.start, end, total: proved.total, meta: proved.meta }, Date.now(), policy, this.actor);
        if (decision.kind === 'refuse') throw refusalError(decision);
        if (decision.kind === 'replay') return decision;
        await this.append(entry, decision.records);
        const record = entry.state.record!;
        return decision.kind === 'handoff' ? { kind: 'handoff', record, claim: record.handoff! } : { kind: 'partial', record };
      });
      // D23: acknowledged once the record is durable; concurrent segments share the flush.
      if (outcome.kind !== 'replay' && policy.durable) await this.sync(entry);
      if (entry.journal && entry.journal.appended >= COMPACT_AFTER) void this.turn(entry, () => this.compact(entry, policy)).catch(() => undefined);
      return outcome;
    } finally {
      this.settle(entry, ticket);
    }
  }

  async abort(ticket: SegmentTicket, policy: EnginePolicy): Promise<void> {
    const entry = this.entries.get(ticket.id)!;
    entry.pins++;
    try {
      this.settle(entry, ticket);
      // A session that never got a byte leaves nothing (no data file, no record).
      if (isUnused(entry)) {
        await this.turn(entry, async () => {
          if (!isUnused(entry)) return;
          await this.undoCreation(entry, entry.state.record!.replaces ? { tombstone: tombstoneFromReplaced(entry.state.record!) } : {}, policy);
          this.observer.sessionClosed('discarded');
        });
      }
    } finally {
      entry.pins--;
    }
  }

  private settle(entry: Entry, ticket: SegmentTicket): void {
    if (!entry.inFlight.delete(ticket.range)) return; // settled already
    if (ticket.file) this.options.dataFiles.release(ticket.file);
    entry.pins--;
    entry.lastUsed = Date.now();
  }

  // -------------------------------------------------------------------------------------------
  // Hand-off
  // -------------------------------------------------------------------------------------------

  async finishHandoff(record: SessionRecord, _claim: HandoffClaim, completion: CompletionRecord, policy: EnginePolicy): Promise<void> {
    const entry = await this.pin(record.id);
    try {
      await this.turn(entry, async () => {
        const current = entry.state.record;
        if (!current || current.createdAt !== record.createdAt) return;
        await this.append(entry, decideFinish(current, completion, Date.now(), policy));
        if (policy.durable) await this.sync(entry);
        this.observer.sessionClosed('completed');
        const stored = entry.state.record!;
        await this.options.dataFiles.evict(stored.dataPath);
        // upload_cleanup: only after the answer is stored (a crash in between leaves the file, never an answer without it).
        if (completion.fileRemoved && stored.fileId) await unlinkIfOwned(stored.dataPath, stored.fileId).catch(() => undefined);
        // A finished session's journal is compacted to one record.
        await this.compact(entry, policy);
      });
    } finally {
      entry.pins--;
    }
  }

  async releaseHandoff(record: SessionRecord, claim: HandoffClaim, _policy: EnginePolicy): Promise<void> {
    const entry = await this.pin(record.id);
    try {
      await this.turn(entry, () => this.append(entry, decideRelease(entry.state.record, claim)));
    } finally {
      entry.pins--;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads and maintenance
  // -------------------------------------------------------------------------------------------

  async status(id: string): Promise<SessionRecord | undefined> {
    const entry = await this.pin(id);
    try {
      // Report what is durable: wait for a flush in progress.
      await entry.journal?.settled();
      const record = entry.state.record;
      return record && !isExpired(record, Date.now()) ? record : undefined;
    } finally {
      entry.pins--;
    }
  }

  async sweep(policy: EnginePolicy): Promise<number> {
    const now = Date.now();
    // Journals untouched for less than this cannot have expired: they are not even read.
    const youngest = now - Math.min(policy.sessionTimeoutMs, policy.completedRetentionMs);
    let removed = 0;
    let open = 0;
    for await (const file of walkFiles(this.options.dir)) {
      const name = path.basename(file);
      if (JOURNAL_TEMPORARY.test(name)) {
        const stat = await fs.stat(file).catch(() => null);
        if (stat && now - stat.mtimeMs > 60_000) await fs.rm(file, { force: true });
        continue;
      }
      const suffix = name.endsWith(SUFFIX) ? SUFFIX : name.endsWith(LEGACY_SUFFIX) ? LEGACY_SUFFIX : null;
      if (!suffix) continue;
      const id = name.slice(0, -suffix.length);
      if (!this.entries.has(id) && suffix === SUFFIX) {
        const stat = await fs.stat(file).catch(() => null);
        if (!stat || stat.mtimeMs > youngest) {
          // Too young to expire: only counted, from the journal, without loading the session.
          if (stat && isOpen(replay((await readJournal(file).catch(() => null))?.records ?? []).record)) open++;
          continue;
        }
      }
      const entry = await this.pin(id).catch(() => null);
      if (!entry) continue;
      try {
        if (await this.turn(entry, () => this.sweepSession(entry, policy, Date.now()))) removed++;
        if (isOpen(entry.state.record)) open++;
      } finally {
        entry.pins--;
      }
    }
    this.observer.sessionsCounted(open);
    return removed;
  }

  /** Expires or retires the session if its time is up; drops a tombstone whose file the backend took. True when something went. */
  private async sweepSession(entry: Entry, policy: EnginePolicy, now: number): Promise<boolean> {
    const { record, tombstone } = entry.state;
    if (tombstone) {
      if ((await fileIdAt(tombstone.dataPath).catch(() => tombstone.fileId)) === tombstone.fileId) return false;
      await this.replaceState(entry, {}, policy);
      return true;
    }
    if (!record) return false;
    const action = decideSweep(record, now);
    if (action === 'keep') return false;
    await this.options.dataFiles.evict(record.dataPath);
    if (action === 'retire') {
      await this.replaceState(entry, { tombstone: tombstoneOf(record, now) }, policy);
    } else {
      // The data first: a crash in between leaves a record whose file is gone, which expires again.
      if (record.fileId && !record.completion) await unlinkIfOwned(record.dataPath, record.fileId);
      await this.replaceState(entry, {}, policy);
      this.observer.sessionClosed('expired');
    }
    return true;
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

  /** Sessions in memory and open journals (for tests). */
  get loaded(): { sessions: number; journals: number } {
    let journals = 0;
    for (const e of this.entries.values()) if (e.journal) journals++;
    return { sessions: this.entries.size, journals };
  }

  // -------------------------------------------------------------------------------------------
  // The table and the journals
  // -------------------------------------------------------------------------------------------

  /** The session's entry, loaded if needed, pinned (the caller unpins). */
  private async pin(id: string): Promise<Entry> {
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
  private turn<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
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
  private async append(entry: Entry, records: readonly JournalRecord[]): Promise<void> {
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

  private async sync(entry: Entry): Promise<void> {
    try {
      const journal = entry.journal;
      if (journal) await timed(() => journal.sync(), (seconds) => this.observer.synced('journal', seconds));
    } catch (err) {
      throw storageError(err, 'the session state store');
    }
  }

  /** Rewrites the journal as one snapshot of the session (in its turn). */
  private async compact(entry: Entry, policy: EnginePolicy): Promise<void> {
    if (!entry.journal) entry.journal = await Journal.open(this.journalPath(entry.id));
    await entry.journal.rewrite(snapshotRecords(entry.state), policy);
  }

  /** The session becomes `state` (a tombstone, or nothing: the journal goes), in its turn. */
  private async replaceState(entry: Entry, state: SessionState, policy: EnginePolicy): Promise<void> {
    await entry.journal?.close();
    entry.journal = null;
    const file = this.journalPath(entry.id);
    if (state.tombstone) await writeJournalAtomically(file, snapshotRecords(state), policy);
    else await removeJournal(file, policy.durable);
    entry.state = state;
  }

  /** Closes the journals of idle sessions and drops idle sessions beyond the capacity. */
  private trim(): void {
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

/** An incomplete session (counted as open by the sweep). */
function isOpen(record: SessionRecord | undefined): boolean {
  return !!record && !record.completion;
}

/** A session that has not acknowledged a byte and has no segment in flight. */
function isUnused(entry: Entry): boolean {
  const record = entry.state.record;
  return !!record && record.ranges.length === 0 && !record.completion && entry.inFlight.size === 0;
}

/** The tombstone a new session was about to replace (its file still in place). */
function tombstoneFromReplaced(record: SessionRecord): import('../session/model').Tombstone {
  return { id: record.id, dataPath: record.dataPath, fileId: record.replaces!, retiredAt: record.createdAt };
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
