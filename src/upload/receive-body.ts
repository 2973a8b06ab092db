import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../protocol/http-errors';
import { checkBodySize } from '../http/request';
import type { Writable } from 'node:stream';
import { onInterrupt } from './interrupt';

/** The location settings that bound the reading of a body. */
export interface BodyLimits {
  /** `client_max_body_size`, 0 = unlimited. */
  clientMaxBodySize: number;
  /** `client_body_timeout`. */
  clientBodyTimeoutMs: number;
}

/**
 * Streams the request body into `writer`. Sends `100 Continue` first when the client asked for
 * it (only now: every header check has passed, as the module does). On a writer error the rest
 * of the body is drained rather than the socket destroyed, so the client still gets our answer.
 *
 * `client_body_timeout` (D25) is nginx's: the longest wait between two reads of the body. A body
 * that stops arriving for that long fails with 408, so the caller's clean-up runs (a segment's
 * byte range is released) and the client's retry goes through at once. Time the gateway itself
 * holds the body back (disk, `upload_limit_rate`: the stream is paused) does not count.
 */
export function receiveBody(req: IncomingMessage, res: ServerResponse, writer: Writable, limits: BodyLimits): Promise<void> {
  if (/100-continue/i.test(String(req.headers.expect ?? ''))) res.writeContinue();
  const bodyLimit = limits.clientMaxBodySize;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let idle: NodeJS.Timeout | null = null;
    let stopListening = () => undefined as unknown;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (idle) clearTimeout(idle);
      stopListening();
      req.off('data', onData);
      if (!err) return resolve();
      req.unpipe(writer);
      writer.destroy();
      req.resume();
      reject(err);
    };
    const waitForBytes = () => {
      if (idle) idle.refresh();
      else idle = setTimeout(onIdle, limits.clientBodyTimeoutMs);
    };
    const onIdle = () => {
      idle = null;
      if (req.complete) return; // all bytes are in: the writer is finishing (fsync)
      if (req.readableFlowing === false || req.readableLength > 0 || writer.writableNeedDrain) return waitForBytes();
      settle(new HttpError(408, `no request body bytes arrived for client_body_timeout (${limits.clientBodyTimeoutMs} ms)`));
    };
    let seen = 0;
    const onData = (chunk: Buffer) => {
      waitForBytes();
      seen += chunk.length;
      try {
        checkBodySize(seen, bodyLimit);
      } catch (err) {
        settle(err as Error);
      }
    };
    // A graceful stop whose grace time is over ends the body with its (retryable) answer.
    stopListening = onInterrupt(req, settle);
    if (settled) return;
    req.on('data', onData);
    writer.on('error', (err) => settle(err));
    writer.on('finish', () => settle());
    const incomplete = () => new HttpError(400, 'request body incomplete: the connection closed before the whole body arrived');
    req.on('close', () => {
      if (!req.complete) settle(incomplete());
    });
    // The connection may be gone already (the handler awaited locks and files before getting
    // here): 'close' was emitted then and will not come again.
    if (req.destroyed && !req.complete) return settle(incomplete());
    if (!req.complete) waitForBytes();
    req.pipe(writer);
  });
}
