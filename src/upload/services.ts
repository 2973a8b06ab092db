import { promises as fs } from 'node:fs';
import type { Logger } from 'pino';
import type { LocationConfig } from '../config/types';
import { checkGuards, type Lease, type Locker, type SessionRecord, type SessionStore } from '../state/types';
import type { TempCounter } from '../store/temp-names';
import type { InOrderDigests } from '../store/digests';

/** What the upload handlers need from the outside world, composed at start-up (see gateway.ts). */
export interface UploadServices {
  /** The session store behind a location's `upload_state_store` (or `upload_state_redis`). */
  sessions(location: LocationConfig): SessionStore;
  /** The locker that guards `sessions(location)` (in-process, or Redis leases shared by instances). */
  locker(location: LocationConfig): Locker;
  counter: TempCounter;
  /** Digests of sessions uploaded in order (so completion need not re-read the file). */
  inOrderDigests: InOrderDigests;
  /** Identifies this gateway process in hand-off claims. */
  instanceId: string;
  /** True when no other instance shares the location's state (then a claim by another owner is from a dead process). */
  singleInstance(location: LocationConfig): boolean;
  log: Logger;
  expireSession(record: SessionRecord, store: SessionStore, guards?: readonly Lease[]): Promise<void>;
}

/** An expired session loses its state; an incomplete one loses its data too (a complete file belongs to the backend). */
export async function expireSession(record: SessionRecord, store: SessionStore, guards?: readonly Lease[]): Promise<void> {
  checkGuards(guards);
  if (!record.completion) await fs.rm(record.dataPath, { force: true });
  await store.delete(record.id, guards);
}
