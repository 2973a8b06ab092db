import type { Logger } from 'pino';
import type { LocationConfig } from '../config/types';
import type { Actor } from '../session/model';
import type { EnginePolicy, SessionEngine } from '../state/engine';
import type { TempCounter } from '../store/temp-names';
import type { InOrderDigests } from '../store/digests';

/** What the upload handlers need from the outside world, composed at start-up (see gateway.ts). */
export interface UploadServices {
  /** The session engine behind a location's `upload_state_store` (or `upload_state_redis`). */
  sessions(location: LocationConfig): SessionEngine;
  /** The location's session rules. */
  policy(location: LocationConfig): EnginePolicy;
  /** This instance, as the session rules see it for the location. */
  actor(location: LocationConfig): Actor;
  /** The largest file the location's store can hold (EFBIG beyond). */
  maxFileSize(location: LocationConfig): number;
  counter: TempCounter;
  /** Digests of sessions uploaded in order (so completion need not re-read the file). */
  inOrderDigests: InOrderDigests;
  log: Logger;
}
