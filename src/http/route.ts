/**
 * Which location's operations settings apply to a request: the location its path matches (as
 * nginx matches: exact first, then the longest prefix), else the top level. One match per
 * request, made before anything else: `allow`/`deny` are checked here (403 before a byte of the
 * body is read), and the request log, the metrics and CORS use the same route.
 */
import type { Context, Middleware } from 'koa';
import { HttpError } from '../protocol/http-errors';
import type { ServedLocationSettings } from '../config/types';
import { AccessRules } from './access-rules';

export type CorsSettings = Pick<ServedLocationSettings, 'corsAllowOrigins' | 'corsAllowHeaders' | 'corsExposeHeaders' | 'corsAllowCredentials' | 'corsMaxAgeMs'>;

export interface Route {
  /** The location as nginx writes it (`= /x`, `/x`); empty when no location matches. */
  label: string;
  access: AccessRules;
  /** `access_log` file; null: off. */
  accessLog: string | null;
  /** CORS of the location; null when it allows no origin. */
  cors: CorsSettings | null;
}

/** A location's (or the top level's) route. */
export function routeFor(label: string, settings: Pick<ServedLocationSettings, 'access' | 'accessLog'> & Partial<CorsSettings>): Route {
  const cors = settings.corsAllowOrigins && settings.corsAllowOrigins.length > 0 ? (settings as CorsSettings) : null;
  return { label, access: new AccessRules(settings.access), accessLog: settings.accessLog, cors };
}

const ROUTE = Symbol('route');

/** The request's route (set by `routeRequests`). */
export function routeOf(ctx: Context): Route | undefined {
  return (ctx.state as Record<symbol, Route | undefined>)[ROUTE];
}

/** The request's path without its query. */
export function requestPath(ctx: Context): string {
  const url = ctx.req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Finds the request's route (`find`), tells `matched` (the request log and metrics), and answers
 * `403` when the route's `allow`/`deny` refuse the client.
 */
export function routeRequests(find: (path: string) => Route, matched: (ctx: Context, route: Route) => void): Middleware {
  return async (ctx, next) => {
    const route = find(requestPath(ctx));
    (ctx.state as Record<symbol, Route>)[ROUTE] = route;
    matched(ctx, route);
    if (!route.access.allows(ctx.req.socket.remoteAddress)) throw new HttpError(403, 'access forbidden by rule');
    return next();
  };
}
