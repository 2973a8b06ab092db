import { HttpError, retryLater } from '../protocol/http-errors';

/** The shared state (Redis) cannot be reached or answered an error: the client should retry (503). */
export class StateUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateUnavailableError';
  }
}

/** A write on behalf of a reservation that is no longer held (fencing): nothing was written. */
export class LeaseLostError extends StateUnavailableError {
  constructor(message = 'the reservation of this segment was lost (expired or taken over); nothing was recorded, send it again') {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/** A rule's refusal (`session/rules.ts`, or the same rule in Redis's Lua) as the answer: 503 is retryable. */
export function refusalError(refusal: { status: number; reason: string }): HttpError {
  return refusal.status === 503 ? retryLater(refusal.reason) : new HttpError(refusal.status, refusal.reason);
}
