/** Node: node:http/https transport (the body counted as the socket takes it), files, Buffers, Blobs. */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { abortReason, NetworkError, type HttpAnswer } from '../core/retry';
import type { Platform, SegmentSource, SourceOptions, Transport, TransportRequest, UploaderOptions } from '../core/types';

/** What the Node client uploads: a path, a Buffer or Uint8Array, or a Blob/File (e.g. `fs.openAsBlob`). */
export type NodeFileInput = string | Uint8Array | Blob;

const CHUNK = 64 * 1024;

function isBlob(value: unknown): value is Blob {
  return typeof Blob !== 'undefined' && value instanceof Blob;
}

export async function openNodeSource(file: NodeFileInput, options: SourceOptions): Promise<SegmentSource> {
  if (typeof file === 'string') {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) throw new TypeError(`${file} is not a regular file`);
    const read = async (start: number, endExclusive: number): Promise<Uint8Array> => {
      const handle = await fsp.open(file, 'r');
      try {
        const buf = Buffer.alloc(endExclusive - start);
        let filled = 0;
        while (filled < buf.length) {
          const { bytesRead } = await handle.read(buf, filled, buf.length - filled, start + filled);
          if (bytesRead === 0) throw new Error(`${file} is shorter than when the upload started (${stat.size} bytes)`);
          filled += bytesRead;
        }
        return buf;
      } finally {
        await handle.close();
      }
    };
    return {
      name: options.name ?? path.basename(file),
      size: stat.size,
      lastModified: options.lastModified ?? Math.floor(stat.mtimeMs),
      type: options.type ?? '',
      read,
      body: read,
    };
  }
  if (file instanceof Uint8Array) {
    const bytes = file;
    const read = async (start: number, endExclusive: number) => bytes.subarray(start, endExclusive);
    return { name: options.name ?? 'upload.bin', size: bytes.length, lastModified: options.lastModified ?? 0, type: options.type ?? '', read, body: read };
  }
  if (isBlob(file)) {
    const blob = file;
    const named = blob as Blob & { name?: unknown; lastModified?: unknown };
    const read = async (start: number, endExclusive: number) => new Uint8Array(await blob.slice(start, endExclusive).arrayBuffer());
    return {
      name: options.name ?? (typeof named.name === 'string' && named.name ? named.name : 'upload.bin'),
      size: blob.size,
      lastModified: options.lastModified ?? (typeof named.lastModified === 'number' ? named.lastModified : 0),
      type: options.type ?? blob.type,
      read,
      body: read,
    };
  }
  throw new TypeError('the file must be a path, a Buffer/Uint8Array or a Blob');
}

/** Response headers with lower-case names, repeated ones joined with `, `. */
function headersOf(res: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    out[name] = name in out ? `${out[name]}, ${raw[i + 1]}` : raw[i + 1]!;
  }
  return out;
}

export function nodeTransport(options: UploaderOptions): Transport {
  const agent = options.agent as http.Agent | undefined;
  return {
    request(req: TransportRequest): Promise<HttpAnswer> {
      return new Promise<HttpAnswer>((resolve, reject) => {
        if (req.signal.aborted) {
          reject(abortReason(req.signal));
          return;
        }
        const url = new URL(req.url);
        const client = url.protocol === 'https:' ? https : http;
        const body = req.body as Uint8Array | undefined;
        // An array keeps the legacy client's header order on the wire (Node adds no Host to one).
        const flat: string[] = ['Host', url.host];
        for (const [name, value] of req.headers) flat.push(name, value);
        if (body) flat.push('Content-Length', String(body.length));
        let settled = false;
        let answered = false;
        const finish = (err: unknown, answer?: HttpAnswer) => {
          if (settled) return;
          settled = true;
          req.signal.removeEventListener('abort', onAbort);
          if (err !== undefined) {
            request.destroy();
            reject(err);
          } else resolve(answer!);
        };
        const onAbort = () => finish(abortReason(req.signal));
        const request = client.request(url, { method: req.method, headers: flat as unknown as http.OutgoingHttpHeaders, agent });
        req.signal.addEventListener('abort', onAbort, { once: true });
        request.setTimeout(req.idleTimeoutMs, () => finish(new NetworkError(`no traffic for ${req.idleTimeoutMs} ms`)));
        request.on('error', (err) => {
          // Writing after an early answer (e.g. 409 before the whole body) may fail: the answer counts.
          if (!answered) finish(new NetworkError(err.message, { cause: err }));
        });
        request.on('response', (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => finish(new NetworkError(err.message, { cause: err })));
          res.on('aborted', () => finish(new NetworkError('the answer was cut off')));
          res.on('end', () => {
            if (!res.complete) {
              finish(new NetworkError('the answer was cut off'));
              return;
            }
            finish(undefined, { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: headersOf(res), body: Buffer.concat(chunks).toString('utf8') });
          });
        });
        if (!body) {
          request.end();
          return;
        }
        // The body goes out in 64 KiB chunks; each one counts once the socket has taken it.
        let offset = 0;
        let sent = 0;
        const pump = () => {
          while (offset < body.length && !settled) {
            const chunk = body.subarray(offset, offset + CHUNK);
            offset += chunk.length;
            const more = request.write(chunk, (err) => {
              if (err || settled) return;
              sent += chunk.length;
              req.onUploadProgress?.(sent);
            });
            if (!more) {
              request.once('drain', pump);
              return;
            }
          }
          if (!settled) request.end();
        };
        pump();
      });
    },
  };
}

export const nodePlatform: Platform<NodeFileInput> = {
  openSource: openNodeSource,
  transport: nodeTransport,
  async digest(algorithm, data) {
    return createHash(algorithm).update(data).digest();
  },
  resolveUrl(url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`options.url must be an absolute http(s) URL in Node (the upload location, e.g. http://127.0.0.1:8080/upload), got ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`unsupported URL scheme ${parsed.protocol}`);
    return parsed.href;
  },
};
