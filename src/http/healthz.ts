import type { Middleware } from 'koa';

export const HEALTHZ_PATH = '/healthz';

/**
 * `GET /healthz` (and HEAD): `200 ok` when `check` finds nothing wrong (stores writable, Redis
 * answering), else `503` with the reason. For load balancers and container health checks; it
 * shadows an upload location at that exact path.
 */
export function healthz(check: () => Promise<string | null>): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== HEALTHZ_PATH || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const problem = await check().catch((err: Error) => `health check failed: ${err.message}`);
    ctx.status = problem ? 503 : 200;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = `${problem ? problem.replace(/[\r\n]+/g, ' ') : 'ok'}\n`;
  };
}
