/**
 * Informational (1xx) answers Node has no method for. Node 20 writes only `100` (writeContinue),
 * `102` (writeProcessing) and `103` (writeEarlyHints); the IETF resumable-upload draft needs
 * `104 Upload Resumption Supported`. It is written the way Node writes its own interim answers:
 * raw bytes on the connection before the final answer's head. Hand-written because no library
 * does it on a node:http response.
 */
import { validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * Sends `HTTP/1.1 <status> <reason>` with `headers` ahead of the final answer; false when it
 * cannot be sent, which interim answers allow:
 * - the final answer's head is already out, or the connection is gone;
 * - the client speaks HTTP/1.0 (RFC 9110 §15.2: no 1xx to an HTTP/1.0 client);
 * - the answer does not own the connection yet (`res.socket` stays null for a pipelined request
 *   until the answers before it are done): its bytes would land inside another answer.
 */
export function writeInterim(req: IncomingMessage, res: ServerResponse, status: number, reason: string, headers: ReadonlyArray<readonly [string, string]>): boolean {
  if (!Number.isInteger(status) || status < 100 || status > 199 || status === 101) throw new RangeError(`not an interim status: ${status}`);
  if (/[\r\n]/.test(reason)) throw new RangeError('a reason phrase is one line');
  for (const [name, value] of headers) {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  }
  const socket = res.socket;
  if (res.headersSent || !socket || socket.destroyed || !socket.writable) return false;
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return false;
  socket.write(`HTTP/1.1 ${status} ${reason}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`, 'latin1');
  return true;
}
