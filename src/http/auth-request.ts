/**
 * nginx's `auth_request` (ngx_http_auth_request_module): before the location reads a byte of the
 * body, a sub-request (`GET`, the client's headers, no body) goes to the auth location; `2xx`
 * lets the request through, `401`/`403` are relayed to the client (with the sub-request's
 * `WWW-Authenticate`), anything else (an unreachable or silent auth service too) is a `500`.
 * As nginx's recipe sets them, the sub-request also carries `X-Original-URI`,
 * `X-Original-Method` and `X-Forwarded-For`.
 *
 * `auth_request_cache TIME [HEADER …]` remembers an allowing answer per session, so the segments
 * of one upload do not each pay a round trip: a request reuses it only with the same location,
 * method, request URI, `Session-ID`, client address and credentials (the named headers; by
 * default every header but those that change from segment to segment). Refusals are never
 * remembered. Hand-written: no library does nginx's sub-request semantics.
 */
import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import type { AuthRequest, AuthRequestCache } from '../config/types';
import { HttpError } from '../protocol/http-errors';
import { NOT_PASSED_UPSTREAM, upstreamRequest } from './upstream';

/** Headers that change from one segment of an upload to the next: not part of the default cache key. */
const PER_SEGMENT = new Set([...NOT_PASSED_UPSTREAM, 'content-range', 'x-content-range', 'content-md5', 'repr-digest', 'digest']);
/** At most this many remembered answers per location (the oldest go first). */
const CACHE_ENTRIES = 10_000;

export interface AuthObserver {
  /** A decision: from a sub-request (its status; 0: it failed) or from the cache. */
  decided(source: 'subrequest' | 'cache', status: number): void;
}

export interface AuthOptions {
  location: string;
  target: AuthRequest;
  cache: AuthRequestCache | null;
  log: Logger;
  observer?: AuthObserver;
}

/** The sub-request's answer: its status and `WWW-Authenticate`, or the reason it failed. */
async function askAuthService(target: AuthRequest, ctx: Context): Promise<{ status: number; challenge: string[] } | { failed: string }> {
  const req = ctx.req;
  const headers: string[] = ['Host', target.hostHeader];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!NOT_PASSED_UPSTREAM.has(req.rawHeaders[i].toLowerCase())) headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const forwarded = req.headers['x-forwarded-for'];
  headers.push('X-Original-URI', req.url ?? '/', 'X-Original-Method', req.method ?? 'GET');
  headers.push('X-Forwarded-For', forwarded ? `${forwarded}, ${req.socket.remoteAddress ?? ''}` : req.socket.remoteAddress ?? '');
  return new Promise((resolve) => {
    const request = upstreamRequest(target.origin, { method: 'GET', path: target.path, headers, connectTimeoutMs: target.connectTimeoutMs, readTimeoutMs: target.readTimeoutMs }, (reason) => new Error(reason));
    request.on('response', (res) => {
      // The answer's body means nothing to nginx either; it is read and dropped.
      res.resume();
      const challenge = res.headers['www-authenticate'];
      res.once('end', () => resolve({ status: res.statusCode ?? 0, challenge: challenge === undefined ? [] : ([] as string[]).concat(challenge) }));
      res.once('error', (err) => {
        request.destroy();
        resolve({ failed: err.message });
      });
    });
    request.on('error', (err) => resolve({ failed: err.message }));
    request.end();
  });
}

/** The cache key of a request, or null when it cannot be cached (no Session-ID). */
function cacheKey(ctx: Context, cache: AuthRequestCache): string | null {
  const req = ctx.req;
  const session = req.headers['session-id'] ?? req.headers['x-session-id'];
  if (session === undefined) return null;
  const hash = createHash('sha256');
  for (const part of [req.method ?? '', req.url ?? '', String(session), req.socket.remoteAddress ?? '']) hash.update(part).update('\0');
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    const credential = cache.headers.length > 0 ? cache.headers.includes(name) : !PER_SEGMENT.has(name);
    if (credential) hash.update(name).update(':').update(req.rawHeaders[i + 1], 'latin1').update('\0');
  }
  return hash.digest('base64');
}

/** `auth_request` of one location (with its cache). */
export function authRequest(options: AuthOptions): Middleware {
  const { target, cache, log, observer } = options;
  const allowedUntil = new Map<string, number>();
  return async (ctx, next) => {
    const key = cache ? cacheKey(ctx, cache) : null;
    if (key !== null) {
      const until = allowedUntil.get(key);
      if (until !== undefined && until > Date.now()) {
        observer?.decided('cache', 200);
        return next();
      }
      allowedUntil.delete(key);
    }
    const answer = await askAuthService(target, ctx);
    if ('failed' in answer) {
      observer?.decided('subrequest', 0);
      log.error({ location: options.location, authRequest: target.source, err: answer.failed }, 'auth request failed');
      throw new HttpError(500, 'the authorization service could not be asked');
    }
    observer?.decided('subrequest', answer.status);
    if (answer.status >= 200 && answer.status < 300) {
      if (key !== null && cache) {
        if (allowedUntil.size >= CACHE_ENTRIES) allowedUntil.delete(allowedUntil.keys().next().value!);
        allowedUntil.set(key, Date.now() + cache.timeMs);
      }
      return next();
    }
    if (answer.status === 401) {
      const challenge = answer.challenge.length > 0 ? { 'WWW-Authenticate': answer.challenge.join(', ') } : undefined;
      throw new HttpError(401, 'authorization required', challenge);
    }
    if (answer.status === 403) throw new HttpError(403, 'access forbidden by the authorization service');
    log.error({ location: options.location, authRequest: target.source, status: answer.status }, 'auth request unexpected status');
    throw new HttpError(500, `the authorization service answered ${answer.status}`);
  };
}
