/**
 * The file engine's expiry sweep: a session whose time is up (`upload_session_timeout`, or
 * `upload_completed_retention` after its answer) goes with its data, a completed one leaves a
 * tombstone (D9), and a tombstone whose file the backend took goes. Journals younger than the
 * shortest timeout are only read, to count the open sessions.
 */
import type { SessionRecord } from '../session/model';
import { decideSweep, tombstoneOf } from '../session/rules';
import type { DataFilePool } from '../store/data-file-pool';
import { fileIdAt, unlinkIfOwned } from '../store/files';
import type { EnginePolicy } from './engine';
import type { StateObserver } from './observer';
import type { Entry, SessionTable } from './session-table';

export class FileSweeper {
  constructor(
    private readonly table: SessionTable,
    private readonly dataFiles: DataFilePool,
    private readonly observer: StateObserver,
  ) {}

  /** Sweeps every stored session; tells the observer how many are open. Returns how many went. */
  async sweepStored(policy: EnginePolicy): Promise<number> {
    // Journals untouched for less than this cannot have expired: they are not even loaded.
    const youngest = Date.now() - Math.min(policy.sessionTimeoutMs, policy.completedRetentionMs);
    let open = 0;
    const removed = await this.table.visitStored(
      youngest,
      async (entry) => {
        const swept = await this.sweepSession(entry, policy, Date.now());
        if (isOpen(entry.state.record)) open++;
        return swept;
      },
      (state) => {
        if (isOpen(state.record)) open++;
      },
    );
    this.observer.sessionsCounted(open);
    return removed;
  }

  /** Expires or retires the session if its time is up; drops a tombstone whose file the backend took. True when something went (in the session's turn). */
  async sweepSession(entry: Entry, policy: EnginePolicy, now: number): Promise<boolean> {
    const { record, tombstone } = entry.state;
    if (tombstone) {
      if ((await fileIdAt(tombstone.dataPath).catch(() => tombstone.fileId)) === tombstone.fileId) return false;
      await this.table.replaceState(entry, {}, policy);
      return true;
    }
    if (!record) return false;
    const action = decideSweep(record, now);
    if (action === 'keep') return false;
    await this.dataFiles.evict(record.dataPath);
    if (action === 'retire') {
      await this.table.replaceState(entry, { tombstone: tombstoneOf(record, now) }, policy);
    } else {
      // The data first: a crash in between leaves a record whose file is gone, which expires again.
      if (record.fileId && !record.completion) await unlinkIfOwned(record.dataPath, record.fileId);
      await this.table.replaceState(entry, {}, policy);
      this.observer.sessionClosed('expired');
    }
    return true;
  }
}

/** An incomplete session (counted as open). */
function isOpen(record: SessionRecord | undefined): boolean {
  return !!record && !record.completion;
}
