/**
 * Server-Sent Events (the WHATWG `text/event-stream` format) for the progress stream, pure: the
 * bytes of one event, and the JSON a progress event carries.
 */
import type { ByteRange } from './range-set';
import type { ProgressState } from './upload-progress';

/** The `id:` of the last event of a stream; a reconnect that presents it gets 204 (EventSource stops). */
export const FINAL_EVENT_ID = 'final';

/** One event: optional `event:`/`id:`/`retry:` fields, `data:` per line of `data`, a blank line. */
export function formatEvent(fields: { data?: string; event?: string; id?: string; retry?: number }): string {
  let out = '';
  const clean = (v: string) => v.replace(/[\r\n]+/g, ' ');
  if (fields.event !== undefined) out += `event: ${clean(fields.event)}\n`;
  if (fields.id !== undefined) out += `id: ${clean(fields.id).replace(/\0/g, '')}\n`;
  if (fields.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(fields.retry))}\n`;
  if (fields.data !== undefined) for (const line of fields.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** A comment line: ignored by EventSource, keeps proxies from timing the stream out. */
export function formatComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
}

/** What one progress event says (its `data:` is this as JSON). */
export interface ProgressEventData {
  /** The progress id (latin1 byte string, as in the request). */
  id: string;
  state: ProgressState;
  /** Bytes the gateway has received (for a resumable session: of the whole file, all segments). */
  received: number;
  /** The upload's size, or null while unknown (a chunked body). */
  total: number | null;
  /** 0–100 with two decimals, null while the total is unknown. */
  percent: number | null;
  /** Bytes per second over the last few seconds (0 until known). */
  bytesPerSecond: number;
  /** Seconds left at that speed; null while unknown; 0 once done. */
  etaSeconds: number | null;
  /** The received byte ranges, inclusive, ascending. */
  ranges: ByteRange[];
  /** The stored final status (0 for none): the backend's answer, or the error. */
  status: number;
}

export function percentOf(received: number, total: number | null): number | null {
  if (total === null || total < 0) return null;
  if (total === 0) return 100;
  return Math.min(100, Math.round((received / total) * 10000) / 100);
}

/** The event for one progress state: default event type (`message`), a numbered id or the final id. */
export function formatProgressEvent(data: ProgressEventData, sequence: number, final: boolean): string {
  return formatEvent({ id: final ? FINAL_EVENT_ID : String(sequence), data: JSON.stringify(data) });
}
