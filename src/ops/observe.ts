/**
 * One observation per request, from the moment node:http hands it over (so requests the HTTP
 * layer refuses are seen too) until its connection is done with it: what the request log writes
 * and the metrics count. It is the request's UploadObserver as well, so the upload handlers'
 * events (bytes, acknowledgements, hand-offs) reach the sinks while they happen.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Context, Middleware } from 'koa';
import { observeUpload, type UploadObserver } from '../upload/observer';
import type { ByteRange } from '../protocol/range-set';
import { lastRawHeader } from '../http/request';

/** What a finished request was. */
export interface RequestFacts {
  remoteAddr: string;
  method: string;
  uri: string;
  sessionId: string | null;
  /** `Content-Range` / `X-Content-Range` as sent. */
  range: string | null;
  /** The answer's status; 499 (nginx's) when the connection closed before an answer. */
  status: number;
  /** The one-line reason of an error the gateway answered itself. */
  reason: string | null;
  /** Request body bytes the upload handlers took. */
  bodyBytes: number;
  /** Bytes written to the connection for this answer (head and body). */
  bytesSent: number;
  seconds: number;
  /** The location the path matched (`= /x`, `/x`); empty for none. */
  location: string;
  /** The upload the request began (null: none), and whether its hand-off ended. */
  upload: { session: boolean; created: boolean } | null;
  handedOff: boolean;
  /** `access_log` of that location (or of the top level). */
  accessLog: string | null;
}

/** Who hears about requests: live upload events (optional) and each finished request. */
export interface RequestSink {
  began?(upload: { session: boolean; created: boolean }): void;
  bytes?(count: number): void;
  committed?(): void;
  handedOff?(status: number | null, seconds: number): void;
  finished(facts: RequestFacts): void;
}

const observations = new WeakMap<IncomingMessage, RequestObservation>();

export class RequestObservation implements UploadObserver {
  private readonly started = performance.now();
  private readonly writtenBefore: number;
  private received = 0;
  location = '';
  accessLog: string | null;
  reason: string | null = null;
  upload: RequestFacts['upload'] = null;
  handed = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly sinks: readonly RequestSink[],
    accessLog: string | null,
  ) {
    this.accessLog = accessLog;
    this.writtenBefore = req.socket.bytesWritten;
  }

  bytes(received: number): void {
    const delta = received - this.received;
    if (delta <= 0) return;
    this.received = received;
    for (const sink of this.sinks) sink.bytes?.(delta);
  }

  acknowledged(_ranges: readonly ByteRange[]): void {}

  completed(_status: number): void {}

  began(upload: { session: boolean; created: boolean }): void {
    this.upload = upload;
    for (const sink of this.sinks) sink.began?.(upload);
  }

  committed(): void {
    for (const sink of this.sinks) sink.committed?.();
  }

  handedOff(status: number | null, seconds: number): void {
    this.handed = true;
    for (const sink of this.sinks) sink.handedOff?.(status, seconds);
  }

  finish(res: ServerResponse): void {
    const { req } = this;
    const facts: RequestFacts = {
      remoteAddr: req.socket.remoteAddress ?? '',
      method: req.method ?? '',
      uri: req.url ?? '',
      sessionId: lastRawHeader(req, 'session-id', 'x-session-id') ?? null,
      range: lastRawHeader(req, 'content-range', 'x-content-range') ?? null,
      status: res.headersSent ? res.statusCode : 499,
      reason: res.headersSent && res.statusCode >= 400 ? this.reason : null,
      bodyBytes: this.received,
      bytesSent: Math.max(0, req.socket.bytesWritten - this.writtenBefore),
      seconds: (performance.now() - this.started) / 1000,
      location: this.location,
      upload: this.upload,
      handedOff: this.handed,
      accessLog: this.accessLog,
    };
    for (const sink of this.sinks) sink.finished(facts);
  }
}

/**
 * The HTTP layer's hooks (`createHttpServer`'s `onRequest`, `onRefused`): a request's observation
 * starts when node:http hands it over and finishes when its response closes; what the parser
 * refuses before there is a request is one finished request of its own (no method, no URI).
 * `accessLog`: the top level's, until a location is matched.
 */
export function requestObservers(sinks: readonly RequestSink[], accessLog: () => string | null) {
  return {
    onRequest(req: IncomingMessage, res: ServerResponse): void {
      const observation = new RequestObservation(req, sinks, accessLog());
      observations.set(req, observation);
      res.once('close', () => observation.finish(res));
    },
    onRefused(socket: Socket, status: number, reason: string): void {
      const facts: RequestFacts = {
        remoteAddr: socket.remoteAddress ?? '', method: '', uri: '', sessionId: null, range: null,
        status, reason, bodyBytes: 0, bytesSent: 0, seconds: 0, location: '', upload: null, handedOff: false, accessLog: accessLog(),
      };
      for (const sink of sinks) sink.finished(facts);
    },
  };
}

/** The request's observation (started by the HTTP layer). */
export function observationOf(req: IncomingMessage): RequestObservation | undefined {
  return observations.get(req);
}

/**
 * Makes the request's observation its upload observer too, and keeps the reason of an error
 * answer the gateway wrote itself (the error responder's one-line body) for the log.
 */
export function observeRequest(): Middleware {
  return async (ctx: Context, next) => {
    const observation = observationOf(ctx.req);
    if (observation) observeUpload(ctx, observation);
    try {
      await next();
    } finally {
      if (observation && ctx.status >= 400 && typeof ctx.body === 'string') observation.reason = ctx.body.trim();
    }
  };
}
