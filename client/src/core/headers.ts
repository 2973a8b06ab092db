/** The request headers legacy clients of nginx_upload_module send, built exactly as they do. */

const SAFE_QUOTED = /^[\x20-\x7e]*$/;
const UNSAFE_IN_QUOTES = /["\\;]/;

/**
 * `attachment; filename="name"` as legacy clients send it. A name the module could not read
 * (non-ASCII, or `"`, `\`, `;` which end or escape its quoted value) is sent as an ASCII
 * fallback with `_` in their place, followed by the exact name in RFC 8187 `filename*`, which
 * the gateway prefers (D11) and the module ignores.
 */
export function contentDisposition(name: string): string {
  if (SAFE_QUOTED.test(name) && !UNSAFE_IN_QUOTES.test(name)) return `attachment; filename="${name}"`;
  const fallback = name.replace(/[^\x20-\x7e]|["\\;]/gu, '_');
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeRfc8187(name)}`;
}

/** RFC 8187 value-chars: UTF-8, percent-encoded except attr-char. */
export function encodeRfc8187(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `bytes START-END/TOTAL` (END inclusive). */
export function contentRange(start: number, end: number, total: number): string {
  return `bytes ${start}-${end}/${total}`;
}

/** A `Content-Type` for the segment: the file's type, never a multipart one (that would be a form). */
export function segmentContentType(type: string | undefined): string {
  const t = (type ?? '').trim();
  if (t === '' || /^multipart\/form-data/i.test(t) || !SAFE_QUOTED.test(t)) return 'application/octet-stream';
  return t;
}

/** D21 checksum header of a segment body. */
export function checksumHeader(algorithm: 'md5' | 'sha256', digest: Uint8Array): [string, string] {
  const b64 = toBase64(digest);
  return algorithm === 'md5' ? ['Content-MD5', b64] : ['Repr-Digest', `sha-256=:${b64}:`];
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + B64[(n >>> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[n >>> 18]! + B64[(n >>> 12) & 63]! + B64[(n >>> 6) & 63]! + '=';
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Header lists from the `headers` option (object or pairs). */
export function headerPairs(headers: Record<string, string> | ReadonlyArray<readonly [string, string]> | undefined): Array<[string, string]> {
  if (!headers) return [];
  if (Array.isArray(headers)) return (headers as ReadonlyArray<readonly [string, string]>).map(([k, v]) => [k, v]);
  return Object.entries(headers as Record<string, string>);
}
