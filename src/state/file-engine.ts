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
import type { ByteRange } from '../protocol/range-set';
import { type Actor, type CompletionRecord, type HandoffClaim, type SegmentRequest, type SessionRecord, type SessionState } from '../session/model';
import {
  decideBegin,
  decideCommit,
  decideFinish,
  decideRelease,
  decideTerminate,
  isExpired,
  isFileComplete,
  type BeginDecision,
} from '../session/rules';
import type { DataFilePool } from '../store/data-file-pool';
import { fileIdAt, unlinkIfOwned } from '../store/files';
import { storageError } from '../store/store-errors';
import { committedEnd, type CommitOutcome, type EnginePolicy, type ProvedSegment, type SegmentTicket, type SessionEngine, type WriteFence } from './engine';
import { Journal } from './journal';
import { IGNORE_STATE, type StateObserver } from './observer';
import { acquireSessionFile, createRecordedFile, nameTakenError } from './session-file';
import { SessionTable, type Entry } from './session-table';
import { FileSweeper } from './file-sweeper';
import { refusalError } from './errors';

/** A journal with this many records appended since it was last written whole is compacted. */
const COMPACT_AFTER = 512;


/** In-process reservations cannot be lost: nothing to check. */
const NO_FENCE: WriteFence = { check() {}, onLost: () => () => undefined };

export interface FileEngineOptions {
  /** `upload_state_store` directory and hash levels. */
  dir: string;
  levels: readonly number[];
  instanceId: string;
  /** Open data files, shared by the gateway's engines. */
  dataFiles: DataFilePool;
  /** Sessions kept in memory and journals kept open at most, and when an idle session's journal closes (defaults in SessionTable). */
  capacity?: number;
  openJournals?: number;
  idleMs?: number;
  /** Told about appends, fsyncs and sessions (metrics). */
  observer?: StateObserver;
}

export class FileSessionEngine implements SessionEngine {
  private readonly table: SessionTable;
  private readonly actor: Actor;
  private readonly observer: StateObserver;
  private readonly sweeper: FileSweeper;

  constructor(private readonly options: FileEngineOptions) {
    this.observer = options.observer ?? IGNORE_STATE;
    this.actor = { instanceId: options.instanceId, singleInstance: true };
    this.table = new SessionTable(options);
    this.sweeper = new FileSweeper(this.table, options.dataFiles, this.observer);
  }

  journalPath(id: string): string {
    return this.table.journalPath(id);
  }

  // -------------------------------------------------------------------------------------------
  // Segments
  // -------------------------------------------------------------------------------------------

  async begin(segment: SegmentRequest, policy: EnginePolicy): Promise<SegmentTicket> {
    const entry = await this.table.pin(segment.id);
    try {
      const decision = this.decideBegin(entry, segment, policy);
      // The hot path: a loaded session with its data file, joined without a turn.
      if (decision.kind === 'join' && (decision.record.fileId !== null || isFileComplete(decision.record))) {
        return await this.join(entry, decision.reserve, false);
      }
      if (decision.kind === 'refuse') throw refusalError(decision);
      return await this.table.turn(entry, () => this.beginChanging(entry, segment, policy));
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
          await this.sweeper.sweepSession(entry, policy, Date.now());
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
      const file = await acquireSessionFile(this.options.dataFiles, record);
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
      entry.journal = await Journal.create(this.table.journalPath(entry.id), [{ t: 'h', r: record }], policy);
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

  /** Creates the session's data file (`createSessionFile`) and records its identity in the journal. */
  private async createDataFile(entry: Entry, policy: EnginePolicy, recovering: boolean): Promise<void> {
    await createRecordedFile(this.options.dataFiles, entry.state.record!, policy, recovering, (fileId) => this.table.append(entry, [{ t: 'f', f: fileId }]));
  }

  /** A session that never got a byte goes away with its file; a tombstone it was to replace comes back. */
  private async undoCreation(entry: Entry, previous: SessionState, policy: EnginePolicy): Promise<void> {
    const record = entry.state.record;
    if (record?.fileId) {
      await this.options.dataFiles.evict(record.dataPath);
      await unlinkIfOwned(record.dataPath, record.fileId);
    }
    const restore = record?.fileId ? {} : previous.tombstone ? { tombstone: previous.tombstone } : {};
    await this.table.replaceState(entry, restore, policy);
  }

  async commit(ticket: SegmentTicket, proved: ProvedSegment, policy: EnginePolicy): Promise<CommitOutcome> {
    const entry = this.table.get(ticket.id)!;
    try {
      const outcome = await this.table.turn(entry, async (): Promise<CommitOutcome> => {
        const end = committedEnd(ticket.range, proved);
        const decision = decideCommit(entry.state.record, { createdAt: ticket.record.createdAt, start: ticket.range.start, end, total: proved.total, meta: proved.meta }, Date.now(), policy, this.actor);
        if (decision.kind === 'refuse') throw refusalError(decision);
        if (decision.kind === 'replay') return decision;
        await this.table.append(entry, decision.records);
        const record = entry.state.record!;
        return decision.kind === 'handoff' ? { kind: 'handoff', record, claim: record.handoff! } : { kind: 'partial', record };
      });
      // D23: acknowledged once the record is durable; concurrent segments share the flush.
      if (outcome.kind !== 'replay' && policy.durable) await this.table.sync(entry);
      // Segments committed together all see the threshold: the first compaction in the turn resets it.
      const due = () => (entry.journal?.appended ?? 0) >= COMPACT_AFTER;
      if (due()) void this.table.turn(entry, async () => (due() ? this.table.compact(entry, policy) : undefined)).catch(() => undefined);
      return outcome;
    } finally {
      this.settle(entry, ticket);
    }
  }

  async abort(ticket: SegmentTicket, policy: EnginePolicy): Promise<void> {
    const entry = this.table.get(ticket.id)!;
    entry.pins++;
    try {
      this.settle(entry, ticket);
      // A session that never got a byte leaves nothing (no data file, no record).
      if (isUnused(entry)) {
        await this.table.turn(entry, async () => {
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
    const entry = await this.table.pin(record.id);
    try {
      await this.table.turn(entry, async () => {
        const current = entry.state.record;
        if (!current || current.createdAt !== record.createdAt) return;
        await this.table.append(entry, decideFinish(current, completion, Date.now(), policy));
        if (policy.durable) await this.table.sync(entry);
        this.observer.sessionClosed('completed');
        const stored = entry.state.record!;
        await this.options.dataFiles.evict(stored.dataPath);
        // upload_cleanup: only after the answer is stored (a crash in between leaves the file, never an answer without it).
        if (completion.fileRemoved && stored.fileId) await unlinkIfOwned(stored.dataPath, stored.fileId).catch(() => undefined);
        // A finished session's journal is compacted to one record.
        await this.table.compact(entry, policy);
      });
    } finally {
      entry.pins--;
    }
  }

  async releaseHandoff(record: SessionRecord, claim: HandoffClaim, _policy: EnginePolicy): Promise<void> {
    const entry = await this.table.pin(record.id);
    try {
      await this.table.turn(entry, () => this.table.append(entry, decideRelease(entry.state.record, claim)));
    } finally {
      entry.pins--;
    }
  }

  async terminate(id: string, policy: EnginePolicy): Promise<boolean> {
    const entry = await this.table.pin(id);
    try {
      return await this.table.turn(entry, async () => {
        const record = entry.state.record;
        if (!record || isExpired(record, Date.now())) return false;
        const decision = decideTerminate(record, Date.now(), policy, this.actor);
        if (typeof decision !== 'string') throw refusalError(decision);
        // As the sweep does, with the session's time up now.
        await this.sweeper.sweepSession(entry, policy, Math.max(Date.now(), record.expiresAt));
        return true;
      });
    } finally {
      entry.pins--;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads and maintenance
  // -------------------------------------------------------------------------------------------

  async status(id: string): Promise<SessionRecord | undefined> {
    const entry = await this.table.pin(id);
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
    return this.sweeper.sweepStored(policy);
  }

  async close(): Promise<void> {
    await this.table.close();
  }

  /** Sessions in memory and open journals (for tests). */
  get loaded(): { sessions: number; journals: number } {
    return this.table.loaded;
  }

}

/** A session that has not acknowledged a byte and has no segment in flight. */
function isUnused(entry: Entry): boolean {
  const record = entry.state.record;
  return !!record && record.ranges.length === 0 && !record.completion && !record.declared && entry.inFlight.size === 0;
}

/** The tombstone a new session was about to replace (its file still in place). */
function tombstoneFromReplaced(record: SessionRecord): import('../session/model').Tombstone {
  return { id: record.id, dataPath: record.dataPath, fileId: record.replaces!, retiredAt: record.createdAt };
}
