/**
 * Graceful stop (SIGTERM, SIGQUIT; nginx's `worker_shutdown_timeout`): the requests in flight
 * finish within the grace time, while any request that arrives on a connection still open gets a
 * retryable `503` and every answer closes its connection. When the grace time is over, the bodies
 * still streaming are interrupted: their segments are answered `503` + `Retry-After` (nothing of
 * them recorded, acknowledged bytes untouched), and the client sends them again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import { retryLater } from '../protocol/http-errors';

/** After the grace time: how long the interrupted requests get to write their answers. */
const ANSWER_MS = 2000;

export class Drain {
  private readonly inFlight = new Map<IncomingMessage, ServerResponse>();
  private stopping = false;
  private emptied: (() => void) | null = null;

  /** Counts the requests in flight; while stopping, refuses new ones (503) and closes connections after each answer. */
  middleware(): Middleware {
    return async (ctx, next) => {
      if (this.stopping) throw retryLater('the gateway is stopping; send the request again');
      const { req, res } = ctx;
      this.inFlight.set(req, res);
      res.once('close', () => {
        this.inFlight.delete(req);
        if (this.inFlight.size === 0) this.emptied?.();
      });
      try {
        await next();
      } finally {
        if (this.stopping && !res.headersSent) ctx.set('Connection', 'close');
      }
    };
  }

  /** Requests in flight now. */
  get size(): number {
    return this.inFlight.size;
  }

  /**
   * Stops taking requests and waits until none is in flight, at most `graceMs`; then interrupts
   * the bodies still streaming (`interrupt`) and waits a little for their answers. Resolves with
   * the number of requests that were still in flight when the grace time was over.
   */
  async stop(graceMs: number, interrupt: (req: IncomingMessage, reason: Error) => void): Promise<number> {
    this.stopping = true;
    if (await this.emptiedWithin(graceMs)) return 0;
    const left = this.inFlight.size;
    for (const [req, res] of this.inFlight) {
      if (!res.headersSent) interrupt(req, retryLater('the gateway stopped before this request was received whole; send it again'));
    }
    await this.emptiedWithin(ANSWER_MS);
    return left;
  }

  private emptiedWithin(ms: number): Promise<boolean> {
    if (this.inFlight.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.emptied = null;
        resolve(false);
      }, ms);
      this.emptied = () => {
        clearTimeout(timer);
        this.emptied = null;
        resolve(true);
      };
    });
  }
}
