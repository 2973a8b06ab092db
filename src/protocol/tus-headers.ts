/**
 * The header fields of tus 1.0.0 (https://tus.io/protocols/resumable-upload) and of the IETF
 * draft "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload, interop versions 5, 6
 * as tus-js-client speaks them, and 8), and how upload URLs map to session ids. Pure functions.
 */
import { CONTROL_CHARACTERS, stripPath } from './content-disposition';
import { DIGEST_LENGTHS, type ExpectedChecksum } from './checksum';
import { parseSessionId } from './session-id';

export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum', 'concatenation'] as const;
/** `Tus-Checksum-Algorithm`, and the algorithms `Upload-Checksum` may name. */
export const TUS_CHECKSUM_ALGORITHMS = ['md5', 'sha1', 'sha256'] as const;
/** The content type of a tus PATCH body. */
export const TUS_CONTENT_TYPE = 'application/offset+octet-stream';

/** The IETF draft's interop versions served: 8 (the current draft), and 5 and 6 (tus-js-client's `ietf-draft-03`, `ietf-draft-05`). */
export const IETF_INTEROP_VERSIONS = [5, 6, 8] as const;
export type IetfInteropVersion = (typeof IETF_INTEROP_VERSIONS)[number];
/** The current draft's version: the only one that gets `104` interim responses (tus-js-client ignores them). */
export const IETF_CURRENT_INTEROP_VERSION = 8;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

/** `Upload-Length`, `Upload-Offset` (tus: digits; the draft's sf-integer is the same for non-negative values). */
export function parseByteCount(value: string, header: string): Parsed<number> {
  const v = value.trim();
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) return fail(`${header} must be a non-negative integer below 2^53, got "${value}"`);
  return ok(Number(v));
}

/** The draft's `Upload-Complete: ?1` / `?0` (a Structured Field Boolean). */
export function parseUploadComplete(value: string): Parsed<boolean> {
  const v = value.trim();
  if (v === '?1') return ok(true);
  if (v === '?0') return ok(false);
  return fail(`Upload-Complete must be ?1 or ?0, got "${value}"`);
}

/** `Upload-Draft-Interop-Version` if it is one we serve, else null. */
export function ietfInteropVersion(value: string | undefined): IetfInteropVersion | null {
  const n = value === undefined ? NaN : Number(value.trim());
  return (IETF_INTEROP_VERSIONS as readonly number[]).includes(n) ? (n as IetfInteropVersion) : null;
}

/**
 * `Upload-Metadata: key base64,key base64`: keys are ASCII without spaces and commas, values
 * base64 (a key may have no value). Returns the decoded values as byte strings (latin1: every byte
 * kept, as header bytes are).
 */
export function parseUploadMetadata(value: string): Parsed<Map<string, string>> {
  const out = new Map<string, string>();
  if (value.trim() === '') return ok(out);
  for (const pair of value.split(',')) {
    const m = /^\s*([\x21-\x2b\x2d-\x7e]+)(?: ([A-Za-z0-9+/]*={0,2}))?\s*$/.exec(pair);
    if (!m) return fail(`malformed Upload-Metadata pair "${pair.trim()}"`);
    if (out.has(m[1]!)) return fail(`Upload-Metadata key "${m[1]}" is given twice`);
    out.set(m[1]!, Buffer.from(m[2] ?? '', 'base64').toString('latin1'));
  }
  return ok(out);
}

/** The file a tus upload describes in its metadata (`filename`/`name`, `filetype`/`type`, as tus-js-client and Uppy send them). */
export function fileFromMetadata(metadata: ReadonlyMap<string, string>, fallbackName: string): Parsed<{ fileName: string; contentType: string }> {
  const name = metadata.get('filename') ?? metadata.get('name') ?? '';
  const type = metadata.get('filetype') ?? metadata.get('type') ?? '';
  // D26: control characters never reach the backend's form.
  if (CONTROL_CHARACTERS.test(name) || CONTROL_CHARACTERS.test(type)) return fail('control character in the file name or type of Upload-Metadata');
  return ok({ fileName: stripPath(name) || fallbackName, contentType: type || 'application/octet-stream' });
}

/** `Upload-Checksum: <algorithm> <base64>` (the checksum extension). */
export function parseUploadChecksum(value: string): Parsed<ExpectedChecksum> {
  const m = /^\s*([A-Za-z0-9-]+) ([A-Za-z0-9+/]+={0,2})\s*$/.exec(value);
  if (!m) return fail(`malformed Upload-Checksum "${value}"`);
  const algorithm = m[1]!.toLowerCase() as ExpectedChecksum['algorithm'];
  if (!(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    return fail(`Upload-Checksum algorithm "${m[1]}" is not supported (${TUS_CHECKSUM_ALGORITHMS.join(', ')})`);
  }
  const digest = Buffer.from(m[2]!, 'base64');
  const length = DIGEST_LENGTHS[algorithm];
  if (digest.length !== length) return fail(`Upload-Checksum: a ${algorithm} digest has ${length} bytes, got ${digest.length}`);
  return ok({ algorithm, hex: digest.toString('hex'), header: 'Upload-Checksum' });
}

/** `Upload-Concat: partial` or `final;<url> <url>…` (the concatenation extension). */
export function parseUploadConcat(value: string): Parsed<{ kind: 'partial' } | { kind: 'final'; urls: string[] }> {
  const v = value.trim();
  if (v === 'partial') return ok({ kind: 'partial' });
  if (!v.startsWith('final;')) return fail(`Upload-Concat must be "partial" or "final;<upload URLs>", got "${value}"`);
  const urls = v.slice(6).trim().split(/ +/).filter(Boolean);
  if (urls.length === 0) return fail('Upload-Concat: final names no partial upload');
  return ok({ kind: 'final', urls });
}

/** The location's path without a trailing slash: upload URLs are `<base>/<id>`. */
export function uploadBase(locationPath: string): string {
  return locationPath.replace(/\/+$/, '');
}

export function uploadPath(locationPath: string, id: string): string {
  return `${uploadBase(locationPath)}/${id}`;
}

/**
 * The session id an upload URL's path names: exactly `<base>/<id>`, the id checked as a Session-ID
 * is (D10: `A-Z a-z 0-9 _ -`, at most `maxLength`); anything else (more path segments, dots,
 * percent-escapes) names no upload, so a client can never name a path.
 */
export function uploadIdFromPath(locationPath: string, uriPath: string, maxLength: number): string | null {
  const prefix = `${uploadBase(locationPath)}/`;
  if (!uriPath.startsWith(prefix)) return null;
  const id = uriPath.slice(prefix.length);
  const parsed = parseSessionId(id, maxLength);
  return parsed.ok && parsed.id === id ? id : null;
}

/** The session id of an upload URL in `Upload-Concat` (absolute, or a path on this server). */
export function uploadIdFromUrl(locationPath: string, url: string, maxLength: number): string | null {
  let pathname: string;
  try {
    pathname = new URL(url, 'http://upload.invalid').pathname;
  } catch {
    return null;
  }
  return uploadIdFromPath(locationPath, pathname, maxLength);
}

/** The draft's `Upload-Limit` dictionary: `max-size` (0 = none), `max-append-size` (0 = none), `max-age` seconds; `min-size=0` when nothing else applies. */
export function formatUploadLimit(limits: { maxSize: number; maxAppendSize: number; maxAgeSeconds: number | null }): string {
  const members: string[] = [];
  if (limits.maxSize > 0) members.push(`max-size=${limits.maxSize}`);
  if (limits.maxAppendSize > 0) members.push(`max-append-size=${limits.maxAppendSize}`);
  if (limits.maxAgeSeconds !== null) members.push(`max-age=${Math.max(0, limits.maxAgeSeconds)}`);
  return members.length > 0 ? members.join(', ') : 'min-size=0';
}

/** `Upload-Expires` (the expiration extension): an RFC 9110 HTTP-date. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
