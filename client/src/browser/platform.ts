/**
 * Browsers: XMLHttpRequest (for its upload progress events), File/Blob sources. The DOM types are
 * described structurally here: the project compiles without the DOM library.
 */
import { md5, sha256 } from '../core/hash';
import { abortReason, NetworkError, type HttpAnswer } from '../core/retry';
import type { Platform, SegmentSource, SourceOptions, Transport, TransportRequest } from '../core/types';

interface ProgressEventLike {
  loaded: number;
}

interface XhrLike {
  open(method: string, url: string, async: boolean): void;
  setRequestHeader(name: string, value: string): void;
  getAllResponseHeaders(): string;
  send(body?: unknown): void;
  abort(): void;
  responseType: string;
  readonly status: number;
  readonly statusText: string;
  readonly responseText: string;
  readonly upload: { onprogress: ((e: ProgressEventLike) => void) | null };
  onprogress: ((e: ProgressEventLike) => void) | null;
  onload: (() => void) | null;
  onerror: (() => void) | null;
  ontimeout: (() => void) | null;
}

interface BrowserGlobals {
  XMLHttpRequest?: new () => XhrLike;
  location?: { href: string };
  crypto?: { subtle?: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> } };
}

const g = globalThis as unknown as BrowserGlobals;

/** A browser File or Blob. */
export type BrowserFileInput = Blob;

export async function openBlobSource(file: Blob, options: SourceOptions): Promise<SegmentSource> {
  if (typeof Blob === 'undefined' || !(file instanceof Blob)) throw new TypeError('the file must be a File or a Blob');
  const named = file as Blob & { name?: unknown; lastModified?: unknown };
  return {
    name: options.name ?? (typeof named.name === 'string' && named.name ? named.name : 'upload.bin'),
    size: file.size,
    lastModified: options.lastModified ?? (typeof named.lastModified === 'number' ? named.lastModified : 0),
    type: options.type ?? file.type,
    read: async (start, endExclusive) => new Uint8Array(await file.slice(start, endExclusive).arrayBuffer()),
    // The slice itself is the body: the browser streams it from disk.
    body: async (start, endExclusive) => file.slice(start, endExclusive),
  };
}

/** `getAllResponseHeaders()` text → lower-case names, repeated ones joined with `, `. */
export function parseHeaderBlock(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

export function xhrTransport(): Transport {
  return {
    request(req: TransportRequest): Promise<HttpAnswer> {
      return new Promise<HttpAnswer>((resolve, reject) => {
        if (req.signal.aborted) {
          reject(abortReason(req.signal));
          return;
        }
        const Xhr = g.XMLHttpRequest;
        if (!Xhr) {
          reject(new TypeError('XMLHttpRequest is not available'));
          return;
        }
        const xhr = new Xhr();
        let settled = false;
        let idle: ReturnType<typeof setTimeout> | undefined;
        const finish = (err: unknown, answer?: HttpAnswer) => {
          if (settled) return;
          settled = true;
          clearTimeout(idle);
          req.signal.removeEventListener('abort', onAbort);
          if (err !== undefined) reject(err);
          else resolve(answer!);
        };
        const onAbort = () => {
          finish(abortReason(req.signal));
          xhr.abort();
        };
        const alive = () => {
          clearTimeout(idle);
          idle = setTimeout(() => {
            finish(new NetworkError(`no traffic for ${req.idleTimeoutMs} ms`));
            xhr.abort();
          }, req.idleTimeoutMs);
        };
        xhr.open(req.method, req.url, true);
        xhr.responseType = 'text';
        // The browser sets Content-Length itself (a forbidden header).
        for (const [name, value] of req.headers) xhr.setRequestHeader(name, value);
        xhr.upload.onprogress = (e) => {
          alive();
          req.onUploadProgress?.(e.loaded);
        };
        xhr.onprogress = alive;
        xhr.onload = () =>
          finish(undefined, { status: xhr.status, statusText: xhr.statusText, headers: parseHeaderBlock(xhr.getAllResponseHeaders()), body: xhr.responseText });
        xhr.onerror = () => finish(new NetworkError('network error'));
        xhr.ontimeout = () => finish(new NetworkError('timed out'));
        req.signal.addEventListener('abort', onAbort, { once: true });
        alive();
        xhr.send(req.body ?? null);
      });
    },
  };
}

export const browserPlatform: Platform<BrowserFileInput> = {
  openSource: openBlobSource,
  transport: () => xhrTransport(),
  async digest(algorithm, data) {
    if (algorithm === 'md5') return md5(data);
    const subtle = g.crypto?.subtle;
    if (subtle) {
      try {
        return new Uint8Array(await subtle.digest('SHA-256', data));
      } catch {
        // fall through to the JavaScript implementation
      }
    }
    return sha256(data);
  },
  resolveUrl(url) {
    return g.location ? new URL(url, g.location.href).href : url;
  },
};
