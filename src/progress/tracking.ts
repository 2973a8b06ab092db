/**
 * `track_uploads ZONE TIMEOUT` on the upload side: a POST carrying a progress id (§3) is
 * registered in the zone, the body writers count its bytes as they arrive, and its end (the answer,
 * an error, a vanished client) finishes the entry, as nginx-upload-progress-module does (§4).
 *
 * Resumable segments (Session-ID + Content-Range) with the same id make one entry for the whole
 * session: `size` is the file's total and `received` what the gateway holds plus what the segments
 * in flight have received so far; the entry finishes when the hand-off is answered.
 */
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import type { LocationConfig } from '../config/types';
import { parseContentRange } from '../protocol/content-range';
import { UploadError } from '../protocol/http-errors';
import type { ByteRange } from '../protocol/range-set';
import { parseSessionId } from '../protocol/session-id';
import { progressIdFrom } from '../protocol/upload-progress';
import { StateUnavailableError } from '../state/errors';
import { rawHeaderValues } from '../upload/variables';
import { observeUpload, type UploadObserver } from '../upload/observer';
import { IN_FLIGHT_KEEPALIVE_MS, type ProgressStore, type UploadIdentity } from './types';

/** Writes to the zone at most this often per request (never per chunk). */
export const REPORT_INTERVAL_MS = 100;

/** Statuses after which a resumable client sends the segment again: they do not end the session's entry. */
const RETRIED = new Set([408, 429, 460]);

let requestCounter = 0;

export interface TrackingOptions {
  /** track_uploads TIMEOUT: how long a finished entry stays. */
  finishTtlMs: number;
  /** How long a session's entry stays between segments (upload_session_timeout). */
  idleTtlMs: number;
  /** Identifies this instance in request keys. */
  instanceId: string;
  log: Logger;
  /**
   * What a request of another protocol on the location is (tus, the IETF draft): a session's
   * part, `untracked`, or null to read it as the module's (`uploadIdentity`).
   */
  identify?: (ctx: Context) => Promise<{ upload: UploadIdentity; start: number } | 'untracked' | null>;
}

/** One tracked request: counts its body bytes and reports them, throttled, to the zone (an UploadObserver). */
export class RequestProgress implements UploadObserver {
  private start = 0;
  private received = 0;
  private lastReport = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private reporting: Promise<void> | null = null;
  private readonly keepalive: NodeJS.Timeout;
  private completion: number | null = null;
  private ended = false;

  private constructor(
    private readonly store: ProgressStore,
    readonly id: string,
    private readonly key: string,
    readonly upload: UploadIdentity,
    private readonly options: TrackingOptions,
  ) {
    // A slow request still says it is alive (readers drop requests silent for a minute).
    this.keepalive = setInterval(() => {
      this.dirty = true;
      this.schedule();
    }, IN_FLIGHT_KEEPALIVE_MS);
    this.keepalive.unref();
  }

  /** Registers the request; a reused id is refused with 500 (P2), a full zone with 503. */
  static async begin(store: ProgressStore, id: string, upload: UploadIdentity, start: number, options: TrackingOptions): Promise<RequestProgress | null> {
    const key = `${options.instanceId}.${++requestCounter}`;
    let result;
    try {
      result = await store.begin(id, upload, key);
    } catch (err) {
      // The zone is an aid: when its Redis fails the upload goes on untracked.
      options.log.warn({ zone: store.zone, err: (err as Error).message }, 'upload progress: cannot register the upload');
      return null;
    }
    if (result === 'duplicate') {
      options.log.info({ zone: store.zone, id }, 'upload_progress: tracking already registered id');
      throw new UploadError(500, `the progress id is already tracked for another upload in zone "${store.zone}"`);
    }
    if (result === 'full') throw new UploadError(503, `the upload_progress zone "${store.zone}" is full`, { 'Retry-After': '1' });
    const progress = new RequestProgress(store, id, key, upload, options);
    progress.start = start;
    return progress;
  }

  /** The request's body bytes so far (called by the body writers for every chunk; cheap). */
  bytes(received: number): void {
    if (this.ended || received === this.received) return;
    this.received = received;
    this.dirty = true;
    this.schedule();
  }

  /** A resumable session's ranges the gateway holds (after loading or updating its record). */
  acknowledged(ranges: readonly ByteRange[]): void {
    if (this.upload.kind !== 'session' || this.ended) return;
    this.store.acknowledge(this.id, ranges).catch((err: Error) => this.failed(err));
  }

  /** The session's hand-off was answered (or replayed) with `status`: the entry finishes with it. */
  completed(status: number): void {
    this.completion = status;
  }

  private failed(err: Error): void {
    this.options.log.warn({ zone: this.store.zone, err: err.message }, 'upload progress: cannot update the zone');
  }

  private schedule(): void {
    if (this.timer || this.reporting || this.ended) return;
    const wait = this.lastReport + REPORT_INTERVAL_MS - Date.now();
    if (wait <= 0) this.report();
    else {
      this.timer = setTimeout(() => this.report(), wait);
      this.timer.unref();
    }
  }

  private report(): void {
    this.timer = null;
    if (!this.dirty || this.ended) return;
    this.dirty = false;
    this.lastReport = Date.now();
    this.reporting = this.store
      .report(this.id, this.key, { start: this.start, received: this.received })
      .catch((err: Error) => this.failed(err))
      .finally(() => {
        this.reporting = null;
        if (this.dirty) this.schedule();
      });
  }

  /**
   * The request is over with `status` (the answer's, or the error's). A request finishes its entry
   * (a vanished client as 400, as the module); a segment finishes its session's entry only with
   * the hand-off's answer or an error the client will not retry.
   */
  async end(status: number, options: { failed: boolean; disconnected: boolean }): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.keepalive);
    if (this.timer) clearTimeout(this.timer);
    await this.reporting;
    let finish: number | null;
    let size: number | undefined;
    if (this.upload.kind === 'request') {
      finish = options.disconnected ? 400 : status;
      if (this.upload.size < 0) size = this.received;
    } else if (this.completion !== null) {
      finish = this.completion;
    } else {
      const final = options.failed && !options.disconnected && status >= 400 && status < 500 && !RETRIED.has(status);
      finish = final ? status : null;
    }
    try {
      await this.store.report(this.id, this.key, { start: this.start, received: this.received });
      await this.store.end(this.id, this.key, { finish, size, ttlMs: finish === null ? this.options.idleTtlMs : this.options.finishTtlMs });
    } catch (err) {
      this.failed(err as Error);
    }
  }
}

/** What the request is: a segment of a resumable session (with its first byte's offset), or one request. */
export function uploadIdentity(ctx: Context, location: LocationConfig): { upload: UploadIdentity; start: number } {
  const req = ctx.req;
  const sessionValue = rawHeaderValues(req, 'session-id', 'x-session-id').pop();
  const rangeValue = rawHeaderValues(req, 'content-range', 'x-content-range').pop();
  if (sessionValue !== undefined && rangeValue !== undefined) {
    const session = parseSessionId(sessionValue, location.sessionIdMaxLength);
    const range = parseContentRange(rangeValue.trim());
    if (session.ok && range.ok) return { upload: { kind: 'session', session: session.id, total: range.range.total }, start: range.range.start };
  }
  const chunked = /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''));
  return { upload: { kind: 'request', size: chunked ? -1 : Number(req.headers['content-length'] ?? 0) }, start: 0 };
}

function statusOf(err: unknown): number {
  if (err instanceof UploadError) return err.status;
  if (err instanceof StateUnavailableError) return 503;
  return 500;
}

/**
 * Wraps an upload location's handler (`track_uploads`): POSTs with a progress id are tracked;
 * `Content-Length` over `client_max_body_size` is an error-only entry (413) without registering,
 * as in the module (§4.1, §4.4). Other methods are not tracked (the status query never touches
 * the zone).
 */
export function trackUploads(location: LocationConfig, store: ProgressStore, options: Omit<TrackingOptions, 'finishTtlMs' | 'idleTtlMs'>): (handler: Middleware) => Middleware {
  const tracking: TrackingOptions = { ...options, finishTtlMs: location.trackUploads!.timeoutMs, idleTtlMs: location.sessionTimeoutMs };
  return (handler) => async (ctx, next) => {
    const id = progressIdFrom(ctx.req.rawHeaders, ctx.req.url, location.progressHeader);
    if (id === null) return handler(ctx, next);
    const identified = options.identify ? await options.identify(ctx) : null;
    if (identified === 'untracked' || (identified === null && ctx.method !== 'POST')) return handler(ctx, next);
    const declared = Number(ctx.req.headers['content-length'] ?? 0);
    if (location.clientMaxBodySize > 0 && declared > location.clientMaxBodySize) {
      await store.recordError(id, 413, tracking.finishTtlMs).catch((err: Error) => options.log.warn({ err: err.message }, 'upload progress: cannot record an error'));
      return handler(ctx, next);
    }
    const { upload, start } = identified ?? uploadIdentity(ctx, location);
    const progress = await RequestProgress.begin(store, id, upload, start, tracking);
    if (!progress) return handler(ctx, next);
    observeUpload(ctx, progress);
    let status = 500;
    let failed = false;
    try {
      await handler(ctx, next);
      status = ctx.status;
    } catch (err) {
      failed = true;
      status = statusOf(err);
      throw err;
    } finally {
      const disconnected = !ctx.req.complete && (ctx.req.destroyed || ctx.req.socket.destroyed);
      await progress.end(status, { failed, disconnected });
    }
  };
}
