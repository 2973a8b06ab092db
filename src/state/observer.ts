/**
 * What the session engines and the data file pool tell about their work: how long journal
 * appends, fsyncs and Redis round trips take, Redis failures, and the sessions they open, close
 * and count. Injected at composition (`StateBackends`); metrics implement it, the engines know only
 * this interface.
 */
export interface StateObserver {
  /** A journal append (file state) took `seconds`. */
  journalAppended(seconds: number): void;
  /** An fdatasync took `seconds` (a session's journal, or a session's data file), waits for a shared flush included. */
  synced(file: 'journal' | 'data', seconds: number): void;
  /** A Redis round trip of the session state took `seconds` (`operation`: the script or command). */
  redisRoundTrip(operation: string, seconds: number): void;
  /** A Redis call failed (`operation`, or `connection` for a lost connection). */
  redisFailed(operation: string): void;
  /** This instance started a session. */
  sessionOpened(): void;
  /** This instance ended a session: its hand-off answer was stored, it expired with its data, or it was discarded without a byte. */
  sessionClosed(reason: 'completed' | 'expired' | 'discarded'): void;
  /** The expiry sweep found this many incomplete sessions in the state (with Redis: every instance's). */
  sessionsCounted(open: number): void;
}

/** An observer that ignores everything (engines built without one). */
export const IGNORE_STATE: StateObserver = {
  journalAppended: () => undefined,
  synced: () => undefined,
  redisRoundTrip: () => undefined,
  redisFailed: () => undefined,
  sessionOpened: () => undefined,
  sessionClosed: () => undefined,
  sessionsCounted: () => undefined,
};

/** Runs `fn` and reports its duration in seconds (also when it fails). */
export async function timed<T>(fn: () => Promise<T>, report: (seconds: number) => void): Promise<T> {
  const started = performance.now();
  try {
    return await fn();
  } finally {
    report((performance.now() - started) / 1000);
  }
}
