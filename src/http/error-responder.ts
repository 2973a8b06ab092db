import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { retryLater, STATUS_TEXT, HttpError } from '../protocol/http-errors';
import { StateUnavailableError } from '../state/errors';
import { ANSWERED_BY_HTTP_LAYER } from './server';

/**
 * The one place errors become answers (D14): `text/plain` one-line reason, the module's status
 * code, `Connection: close` so an unread body is never taken for a next request (D1, D2).
 */
export function errorResponder(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (caught) {
      // Shared state unreachable, or a lease lost (fencing): nothing was recorded, the client retries.
      const err = caught instanceof StateUnavailableError ? retryLater(caught.message) : caught;
      if (caught instanceof StateUnavailableError) log.warn({ err: caught.message, url: ctx.url }, 'session state unavailable');
      const socket = ctx.req.socket as { [ANSWERED_BY_HTTP_LAYER]?: boolean };
      if (socket[ANSWERED_BY_HTTP_LAYER] || ctx.res.headersSent || !ctx.res.writable) {
        ctx.respond = false;
        return;
      }
      const known = err instanceof HttpError;
      if (!known) log.error({ err, url: ctx.url }, 'request failed');
      const status = known ? err.status : 500;
      const reason = known ? err.message : 'internal error';
      for (const name of ctx.response.headers ? Object.keys(ctx.response.headers) : []) ctx.remove(name);
      ctx.status = status;
      const text = STATUS_TEXT[status];
      if (text) ctx.message = text;
      if (known && err.headers) for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
      ctx.set('Connection', 'close');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${reason.replace(/[\r\n]+/g, ' ')}\n`;
    }
  };
}
