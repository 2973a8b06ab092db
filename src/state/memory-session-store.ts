import { MemoryLocker } from './memory-locker';
import { checkGuards, updateInProcess, type Change, type Lease, type SessionRecord, type SessionStore } from './types';

/** Records kept in process memory: for programmatic use and tests; nothing survives a restart. */
export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, string>();
  /** Serialises `update`s of one id (a `decide` may await nothing, but its caller's get/put may). */
  private readonly updates = new MemoryLocker();

  async get(id: string): Promise<SessionRecord | undefined> {
    const text = this.records.get(id);
    // Stored as JSON so callers can never mutate what is stored.
    return text === undefined ? undefined : (JSON.parse(text) as SessionRecord);
  }

  async put(record: SessionRecord, guards?: readonly Lease[]): Promise<void> {
    checkGuards(guards);
    this.records.set(record.id, JSON.stringify(record));
  }

  async delete(id: string, guards?: readonly Lease[]): Promise<void> {
    checkGuards(guards);
    this.records.delete(id);
  }

  update<T>(id: string, decide: (current: SessionRecord | undefined) => Change<T>, guards?: readonly Lease[]): Promise<T> {
    return updateInProcess(this, this.updates, id, decide, guards);
  }

  async *ids(): AsyncIterable<string> {
    yield* [...this.records.keys()];
  }

  async close(): Promise<void> {}
}
