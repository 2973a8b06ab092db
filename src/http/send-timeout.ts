import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const SEND_TIMEOUT = Symbol('sendTimeoutMs');

type WatchedSocket = Socket & {
  [SEND_TIMEOUT]?: number;
  /** libuv's bytes not yet taken by the kernel (it shrinks as a slow client reads a large write). */
  _handle?: { writeQueueSize?: number } | null;
};

/** The `send_timeout` of the location answering `res` (until the next request on the connection). */
export function setSendTimeout(res: ServerResponse, ms: number): void {
  const socket = res.socket as WatchedSocket | null;
  if (socket) socket[SEND_TIMEOUT] = ms;
}

/**
 * nginx's `send_timeout`: a connection whose answer bytes have been waiting for the client
 * without any progress for that long is closed (the client does not read). Progress is any
 * change of the bytes still queued (the socket's buffer plus libuv's write queue). One sweep
 * over the open connections serves them all; a stalled connection is closed between
 * `send_timeout` and `send_timeout` + one sweep interval after its last progress.
 */
/** How often to look for connections past a timeout: a quarter of it, between 25 ms and 1 s. */
export function checkingInterval(timeoutMs: number): number {
  return Math.max(25, Math.min(1000, Math.floor(timeoutMs / 4)));
}

export class SendTimeouts {
  private readonly watched = new Map<WatchedSocket, { pending: number; since: number }>();
  private sweep: NodeJS.Timeout | null = null;
  private intervalMs = 1000;

  /** `shortestMs`: the shortest `send_timeout` any location has (sets the sweep interval). */
  constructor(private defaultMs: number, shortestMs: number) {
    this.configure(defaultMs, shortestMs);
  }

  /** New values (a configuration reload); the next sweeps use them. */
  configure(defaultMs: number, shortestMs: number): void {
    this.defaultMs = defaultMs;
    this.intervalMs = checkingInterval(Math.min(defaultMs, shortestMs));
  }

  watch(socket: Socket): void {
    const watched = socket as WatchedSocket;
    this.watched.set(watched, { pending: 0, since: Date.now() });
    socket.once('close', () => {
      this.watched.delete(watched);
      if (this.watched.size === 0 && this.sweep) {
        clearInterval(this.sweep);
        this.sweep = null;
      }
    });
    if (!this.sweep) {
      this.sweep = setInterval(() => this.check(), this.intervalMs);
      this.sweep.unref();
    }
  }

  /** The current request on `socket` starts with the server-level value. */
  reset(socket: Socket): void {
    (socket as WatchedSocket)[SEND_TIMEOUT] = this.defaultMs;
  }

  private check(): void {
    const now = Date.now();
    for (const [socket, progress] of this.watched) {
      const pending = socket.writableLength + (socket._handle?.writeQueueSize ?? 0);
      if (pending === 0 || pending !== progress.pending) {
        progress.pending = pending;
        progress.since = now;
      } else if (now - progress.since >= (socket[SEND_TIMEOUT] ?? this.defaultMs)) {
        socket.destroy();
      }
    }
  }
}
