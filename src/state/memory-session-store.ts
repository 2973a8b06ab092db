import type { SessionRecord, SessionStore } from './types';

/** Records kept in process memory: for programmatic use and tests; nothing survives a restart. */
export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, string>();

  async get(id: string): Promise<SessionRecord | undefined> {
    const text = this.records.get(id);
    // Stored as JSON so callers can never mutate what is stored.
    return text === undefined ? undefined : (JSON.parse(text) as SessionRecord);
  }

  async put(record: SessionRecord): Promise<void> {
    this.records.set(record.id, JSON.stringify(record));
  }

  async delete(id: string): Promise<void> {
    this.records.delete(id);
  }

  async *ids(): AsyncIterable<string> {
    yield* [...this.records.keys()];
  }

  async close(): Promise<void> {}
}
