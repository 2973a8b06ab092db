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
import { isRetryableStatus, retryLater, HttpError } from '../protocol/http-errors';
import type { ByteRange } from '../protocol/range-set';
import { progressIdFrom } from '../protocol/upload-progress';
import { StateUnavailableError } from '../state/errors';
import { declaredLength } from '../http/request';
import { observeUpload, type UploadObserver } from '../upload/observer';
import { Throttle } from './rate';
import { IN_FLIGHT_KEEPALIVE_MS, type ProgressZone, type UploadIdentity } from './types';
import { segmentHeaders } from '../upload/segment-headers';

/** Writes to the zone at most this often per request (never per chunk). */
export const REPORT_INTERVAL_MS = 100;


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
  /** Writes to the zone at most every REPORT_INTERVAL_MS, the latest count always delivered. */
  private readonly reporter = new Throttle(() => this.report(), REPORT_INTERVAL_MS);
  private readonly keepalive: NodeJS.Timeout;
  private completion: number | null = null;
  private ended = false;

  private constructor(
    private readonly zone: ProgressZone,
    readonly id: string,
    private readonly key: string,
    readonly upload: UploadIdentity,
    private readonly options: TrackingOptions,
  ) {
    // A slow request still says it is alive (readers drop requests silent for a minute).
    this.keepalive = setInterval(() => this.reporter.trigger(), IN_FLIGHT_KEEPALIVE_MS);
    this.keepalive.unref();
  }

  /** Registers the request; a reused id is refused with 500 (P2), a full zone with 503. */
  static async begin(zone: ProgressZone, id: string, upload: UploadIdentity, start: number, options: TrackingOptions): Promise<RequestProgress | null> {
    const key = `${options.instanceId}.${++requestCounter}`;
    let result;
    try {
      result = await zone.begin(id, upload, key);
    } catch (err) {
      // The zone is an aid: when its Redis fails the upload goes on untracked.
      options.log.warn({ zone: zone.name, err: (err as Error).message }, 'upload progress: cannot register the upload');
      return null;
    }
    if (result === 'duplicate') {
      options.log.info({ zone: zone.name, id }, 'upload_progress: tracking already registered id');
      throw new HttpError(500, `the progress id is already tracked for another upload in zone "${zone.name}"`);
    }
    if (result === 'full') throw retryLater(`the upload_progress zone "${zone.name}" is full`);
    const progress = new RequestProgress(zone, id, key, upload, options);
    progress.start = start;
    return progress;
  }

  /** The request's body bytes so far (called by the body writers for every chunk; cheap). */
  bytes(received: number): void {
    if (this.ended || received === this.received) return;
    this.received = received;
    this.reporter.trigger();
  }

  /** A resumable session's ranges the gateway holds (after loading or updating its record). */
  acknowledged(ranges: readonly ByteRange[]): void {
    if (this.upload.kind !== 'session' || this.ended) return;
    this.zone.acknowledge(this.id, ranges).catch((err: Error) => this.failed(err));
  }

  /** The session's hand-off was answered (or replayed) with `status`: the entry finishes with it. */
  completed(status: number): void {
    this.completion = status;
  }

  private failed(err: Error): void {
    this.options.log.warn({ zone: this.zone.name, err: err.message }, 'upload progress: cannot update the zone');
  }

  private report(): Promise<void> {
    return this.zone.report(this.id, this.key, { start: this.start, received: this.received }).catch((err: Error) => this.failed(err));
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
    this.reporter.stop();
    await this.reporter.idle();
    let finish: number | null;
    let size: number | undefined;
    if (this.upload.kind === 'request') {
      finish = options.disconnected ? 400 : status;
      if (this.upload.size < 0) size = this.received;
    } else if (this.completion !== null) {
      finish = this.completion;
    } else {
      const final = options.failed && !options.disconnected && status >= 400 && status < 500 && !isRetryableStatus(status);
      finish = final ? status : null;
    }
    try {
      await this.zone.report(this.id, this.key, { start: this.start, received: this.received });
      await this.zone.end(this.id, this.key, { finish, size, ttlMs: finish === null ? this.options.idleTtlMs : this.options.finishTtlMs });
    } catch (err) {
      this.failed(err as Error);
    }
  }
}

/** What the request is: a segment of a resumable session (with its first byte's offset), or one request. */
export function uploadIdentity(ctx: Context, location: LocationConfig): { upload: UploadIdentity; start: number } {
  const { sessionId, range } = segmentHeaders(ctx, location);
  if (sessionId !== null && range !== null) return { upload: { kind: 'session', session: sessionId, total: range.total }, start: range.start };
  return { upload: { kind: 'request', size: declaredLength(ctx.req) ?? -1 }, start: 0 };
}

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof StateUnavailableError) return 503;
  return 500;
}

/**
 * Wraps an upload location's handler (`track_uploads`): POSTs with a progress id are tracked;
 * `Content-Length` over `client_max_body_size` is an error-only entry (413) without registering,
 * as in the module (§4.1, §4.4). Other methods are not tracked (the status query never touches
 * the zone).
 */
export function trackUploads(location: LocationConfig, zone: ProgressZone, options: Omit<TrackingOptions, 'finishTtlMs' | 'idleTtlMs'>): (handler: Middleware) => Middleware {
  const tracking: TrackingOptions = { ...options, finishTtlMs: location.trackUploads!.timeoutMs, idleTtlMs: location.sessionTimeoutMs };
  return (handler) => async (ctx, next) => {
    const id = progressIdFrom(ctx.req.rawHeaders, ctx.req.url, location.progressHeader);
    if (id === null) return handler(ctx, next);
    const identified = options.identify ? await options.identify(ctx) : null;
    if (identified === 'untracked' || (identified === null && ctx.method !== 'POST')) return handler(ctx, next);
    const declared = declaredLength(ctx.req) ?? 0;
    if (location.clientMaxBodySize > 0 && declared > location.clientMaxBodySize) {
      await zone.recordError(id, 413, tracking.finishTtlMs).catch((err: Error) => options.log.warn({ err: err.message }, 'upload progress: cannot record an error'));
      return handler(ctx, next);
    }
    const { upload, start } = identified ?? uploadIdentity(ctx, location);
    const progress = await RequestProgress.begin(zone, id, upload, start, tracking);
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
