/**
 * `report_uploads ZONE`: the progress endpoint. A `GET`/`HEAD` with a progress id (§3) is answered
 * as nginx-upload-progress-module answers it (§6: the state's template, its content type, the
 * `Expires`/`Cache-Control` pair, `200` in every state); a `GET` that accepts `text/event-stream`
 * gets a Server-Sent Events stream of the same upload instead (throttled to 10 events/s, closed
 * when the upload ends or the client leaves).
 */
import type { Context, Middleware } from 'koa';
import type { ProgressLocationConfig } from '../config/types';
import { HttpError } from '../protocol/http-errors';
import { FINAL_EVENT_ID, formatComment, formatEvent, formatProgressEvent, percentOf, type ProgressEventData } from '../protocol/sse';
import {
  acceptsEventStream,
  callbackFrom,
  PROGRESS_CACHE_CONTROL,
  PROGRESS_EXPIRES,
  progressIdFrom,
  progressView,
  renderProbe,
  type ProgressView,
} from '../protocol/upload-progress';
import { lastRawHeader, requestVariable } from '../http/request';
import { etaSeconds, RateWindow, realClock, Throttle, type Clock } from './rate';
import { snapshotOf, type ProgressSnapshot, type ProgressZone } from './types';

export interface StreamOptions {
  /** Minimum time between two events (default 100 ms: at most 10 events per second). */
  intervalMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
  /** While uploading, an event at least this often, so speed and ETA follow a stall (default 1 s). */
  tickMs?: number;
  clock?: Clock;
}

export function reportUploads(location: ProgressLocationConfig, zone: ProgressZone, options: StreamOptions = {}): Middleware {
  return async (ctx) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      throw new HttpError(405, `method ${ctx.method} not allowed on the progress location`, { Allow: 'GET, HEAD' });
    }
    const id = progressIdFrom(ctx.req.rawHeaders, ctx.req.url, location.header);
    // P10 copied: without an id the module steps aside and nginx answers 404.
    if (id === null) throw new HttpError(404, `no progress id: send the ${location.header} header or query argument`);
    if (ctx.method === 'GET' && acceptsEventStream(lastRawHeader(ctx.req, 'accept'))) return streamProgress(ctx, zone, id, options);
    const entry = await zone.get(id);
    sendProbe(ctx, location, entry ? snapshotOf(entry) : undefined);
  };
}

/**
 * The module's answer (§6.2): `200` with Content-Type, Content-Length, Connection, then `Expires`
 * and `Cache-Control`, in that order; HEAD without Content-Length and body (P10 copied). Range and
 * conditional headers are ignored.
 */
export function sendProbe(ctx: Context, location: ProgressLocationConfig, snapshot: ProgressSnapshot | undefined): void {
  const view = progressView(snapshot);
  const body = renderProbe(location.templates, view, callbackFrom(ctx.req.url, location.jsonpParameter), (name: string) => requestVariable(name, ctx.req));
  const head = ctx.method === 'HEAD';
  const res = ctx.res;
  const headers = ['Date', new Date().toUTCString(), 'Content-Type', location.contentType];
  if (!head) headers.push('Content-Length', String(body.length));
  headers.push('Connection', res.shouldKeepAlive ? 'keep-alive' : 'close', 'Expires', PROGRESS_EXPIRES, 'Cache-Control', PROGRESS_CACHE_CONTROL);
  ctx.respond = false;
  res.writeHead(200, headers);
  res.end(head ? undefined : body);
}

/** The JSON of one event. */
export function eventData(id: string, view: ProgressView, snapshot: ProgressSnapshot | undefined, bytesPerSecond: number): ProgressEventData {
  const total = snapshot && snapshot.size >= 0 ? snapshot.size : null;
  const done = view.state === 'done';
  return {
    id,
    state: view.state,
    received: view.received,
    total,
    percent: done && total !== null ? 100 : percentOf(view.received, total),
    bytesPerSecond: view.state === 'uploading' ? bytesPerSecond : 0,
    etaSeconds: done ? 0 : view.state === 'uploading' ? etaSeconds(view.received, total, bytesPerSecond) : null,
    ranges: snapshot?.ranges ?? [],
    status: view.status,
  };
}

const finalState = (view: ProgressView) => view.state === 'done' || view.state === 'error';

/**
 * Server-Sent Events for one progress id: an event now, then on every change of the entry (at most
 * one per `intervalMs`), until the upload is done or failed (the last event has id `final`, then
 * the stream closes) or the client leaves. A reconnect presenting `Last-Event-ID: final` for a
 * finished upload gets `204`, which stops EventSource. Resolves when the stream is over; nothing
 * (listener, timer) is left behind.
 */
export async function streamProgress(ctx: Context, zone: ProgressZone, id: string, options: StreamOptions = {}): Promise<void> {
  const res = ctx.res;
  const clock = options.clock ?? realClock;
  if (lastRawHeader(ctx.req, 'last-event-id') === FINAL_EVENT_ID) {
    const entry = await zone.get(id);
    if (finalState(progressView(entry ? snapshotOf(entry) : undefined))) {
      ctx.respond = false;
      res.writeHead(204, ['Cache-Control', 'no-cache']);
      res.end();
      return;
    }
  }
  ctx.respond = false;
  res.writeHead(200, [
    'Content-Type', 'text/event-stream; charset=utf-8',
    'Cache-Control', 'no-cache',
    // nginx in front: pass events on at once (proxy_buffering off for this answer).
    'X-Accel-Buffering', 'no',
  ]);
  res.write(formatEvent({ retry: 2000 }));
  res.socket?.setNoDelay(true);

  await new Promise<void>((resolve) => {
    const rate = new RateWindow();
    let sequence = 0;
    let over = false;
    let uploading = false;
    const stop = () => {
      if (over) return;
      over = true;
      unwatch();
      throttle.stop();
      clearInterval(heartbeat);
      clearInterval(tick);
      res.off('close', stop);
      resolve();
    };
    const emit = async () => {
      let entry;
      try {
        entry = await zone.get(id);
      } catch {
        return; // the zone is unreachable for now: the next change or tick tries again
      }
      if (over) return;
      const snapshot = entry ? snapshotOf(entry, clock.now()) : undefined;
      const view = progressView(snapshot);
      uploading = view.state === 'uploading';
      const final = finalState(view);
      res.write(formatProgressEvent(eventData(id, view, snapshot, rate.add(clock.now(), view.received)), ++sequence, final));
      if (final) {
        stop();
        res.end();
      }
    };
    const throttle = new Throttle(emit, options.intervalMs ?? 100, clock);
    const unwatch = zone.watch(id, () => throttle.trigger());
    const heartbeat = setInterval(() => res.write(formatComment('keep-alive')), options.heartbeatMs ?? 15_000);
    heartbeat.unref();
    const tick = setInterval(() => {
      if (uploading) throttle.trigger();
    }, options.tickMs ?? 1000);
    tick.unref();
    res.on('close', stop);
    if (res.closed || res.socket?.destroyed) return stop();
    throttle.trigger();
  });
}
