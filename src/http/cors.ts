/**
 * CORS (`cors_allow_origin` …) for pages on another origin that upload with the protocol, poll
 * progress or read metrics. Only a request whose `Origin` the location allows is concerned:
 * - a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered `204` naming the
 *   protocol's methods and request headers (plus `cors_allow_headers`);
 * - any other answer, errors included, gets `Access-Control-Allow-Origin` and exposes the
 *   protocol's response headers (`Range`, `X-Upload-*`, `Retry-After`, plus `cors_expose_headers`).
 * Without CORS configured, or for another origin, nothing changes: an `OPTIONS` gets the module's
 * answer (200, empty).
 */
import type { Context, Middleware } from 'koa';
import { routeOf, type CorsSettings } from './route';

export const CORS_METHODS = ['POST', 'GET', 'HEAD', 'OPTIONS'];
/** The request headers of the resumable protocol, checksums and upload progress. */
export const CORS_REQUEST_HEADERS = [
  'Content-Type', 'Content-Disposition', 'Content-Range', 'X-Content-Range', 'Session-ID', 'X-Session-ID',
  'Content-MD5', 'Repr-Digest', 'Digest', 'X-Progress-ID',
];
/** The response headers a page needs to read: the ranges, the status query's, when to retry. */
export const CORS_EXPOSED_HEADERS = ['Range', 'X-Upload-State', 'X-Upload-Total', 'X-Upload-Backend-Status', 'Retry-After'];

/** The `Access-Control-Allow-Origin` value for `origin`, or null when the location does not allow it. */
export function allowedOrigin(cors: CorsSettings, origin: string): string | null {
  if (cors.corsAllowOrigins.includes(origin)) return origin;
  if (!cors.corsAllowOrigins.includes('*')) return null;
  // `*` cannot go with credentials (config refuses that), so it is sent as is.
  return '*';
}

function originOf(ctx: Context): string | null {
  const origin = ctx.req.headers.origin;
  return typeof origin === 'string' && origin.length > 0 ? origin : null;
}

function isPreflight(ctx: Context): boolean {
  return ctx.method === 'OPTIONS' && ctx.req.headers['access-control-request-method'] !== undefined;
}

/** Answers the preflights of allowed origins (before `auth_request`: browsers send no credentials with them). */
export function corsPreflight(): Middleware {
  return async (ctx, next) => {
    const cors = routeOf(ctx)?.cors;
    const origin = originOf(ctx);
    const allowed = cors && origin && isPreflight(ctx) ? allowedOrigin(cors, origin) : null;
    if (!cors || !allowed) return next();
    ctx.status = 204;
    ctx.set('Access-Control-Allow-Methods', CORS_METHODS.join(', '));
    ctx.set('Access-Control-Allow-Headers', [...CORS_REQUEST_HEADERS, ...cors.corsAllowHeaders].join(', '));
    ctx.set('Access-Control-Max-Age', String(Math.floor(cors.corsMaxAgeMs / 1000)));
    ctx.vary('Access-Control-Request-Method');
    ctx.vary('Access-Control-Request-Headers');
  };
}

/** Adds the CORS headers of an allowed origin to whatever answer the request got (runs outside the error responder). */
export function corsHeaders(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } finally {
      const cors = routeOf(ctx)?.cors;
      const origin = originOf(ctx);
      const allowed = cors && origin ? allowedOrigin(cors, origin) : null;
      if (cors && allowed && !ctx.res.headersSent && ctx.respond !== false) {
        ctx.set('Access-Control-Allow-Origin', allowed);
        if (cors.corsAllowCredentials) ctx.set('Access-Control-Allow-Credentials', 'true');
        if (!isPreflight(ctx)) ctx.set('Access-Control-Expose-Headers', [...CORS_EXPOSED_HEADERS, ...cors.corsExposeHeaders].join(', '));
        if (allowed !== '*') ctx.vary('Origin');
      }
    }
  };
}
