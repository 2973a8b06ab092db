import type { IncomingMessage, ServerResponse } from 'node:http';
import { UploadError } from '../protocol/http-errors';
import type { Writable } from 'node:stream';

/**
 * Streams the request body into `writer`. Sends `100 Continue` first when the client asked for
 * it (only now: every header check has passed, as the module does). On a writer error the rest
 * of the body is drained rather than the socket destroyed, so the client still gets our answer.
 */
export function receiveBody(req: IncomingMessage, res: ServerResponse, writer: Writable, bodyLimit: number): Promise<void> {
  if (/100-continue/i.test(String(req.headers.expect ?? ''))) res.writeContinue();
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      req.off('data', checkLimit);
      if (!err) return resolve();
      req.unpipe(writer);
      writer.destroy();
      req.resume();
      reject(err);
    };
    let seen = 0;
    const checkLimit = (chunk: Buffer) => {
      seen += chunk.length;
      if (bodyLimit > 0 && seen > bodyLimit) settle(new UploadError(413, `request body larger than client_max_body_size (${bodyLimit} bytes)`));
    };
    if (bodyLimit > 0) req.on('data', checkLimit);
    writer.on('error', (err) => settle(err));
    writer.on('finish', () => settle());
    const incomplete = () => new UploadError(400, 'request body incomplete: the connection closed before the whole body arrived');
    req.on('close', () => {
      if (!req.complete) settle(incomplete());
    });
    // The connection may be gone already (the handler awaited locks and files before getting
    // here): 'close' was emitted then and will not come again.
    if (req.destroyed && !req.complete) return settle(incomplete());
    req.pipe(writer);
  });
}
