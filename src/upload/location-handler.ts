import type { Middleware } from 'koa';
import type { LocationConfig } from '../config/types';
import { UploadError } from '../protocol/http-errors';
import { parseSessionId } from '../protocol/session-id';
import { handleRawUpload } from './raw-upload';
import { uploadState } from '../session/model';
import { lastRawHeader, renderAddHeaders, variableLookup } from './variables';
import { sendSessionStatus } from './responses';
import type { UploadServices } from './services';
import { discoveryHeaders, resumableRequest } from './resumable-protocols';
import { handleTus } from './tus';
import { handleIetf } from './ietf';

/** Multipart/form-data handling is composed in separately (its own handler). */
export type MultipartHandler = (ctx: Parameters<Middleware>[0], location: LocationConfig, services: UploadServices) => Promise<void>;

/** Dispatch inside one upload location, in the module's order (§1). */
export function uploadLocation(location: LocationConfig, services: UploadServices, multipart: MultipartHandler | null): Middleware {
  return async (ctx) => {
    const req = ctx.req;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (location.clientMaxBodySize > 0 && declared > location.clientMaxBodySize) {
      throw new UploadError(413, `request body larger than client_max_body_size (${location.clientMaxBodySize} bytes)`);
    }
    // tus and the IETF draft (upload_tus on): requests that carry their headers.
    const resumable = resumableRequest(ctx, location);
    if (resumable?.protocol === 'tus') return handleTus(ctx, location, services, resumable.target);
    if (resumable?.protocol === 'ietf') return handleIetf(ctx, location, services, resumable.version, resumable.target);
    switch (req.method) {
      case 'OPTIONS': {
        ctx.status = 200;
        for (const [name, value] of renderAddHeaders(location, variableLookup(req, null))) ctx.append(name, value);
        for (const [name, value] of discoveryHeaders(ctx, location)) ctx.set(name, value);
        ctx.body = Buffer.alloc(0);
        ctx.remove('Content-Type');
        return;
      }
      case 'GET':
      case 'HEAD':
        return statusQuery(ctx, location, services);
      case 'POST':
        break;
      default:
        throw new UploadError(405, `method ${req.method} not allowed here`, { Allow: 'POST, OPTIONS' });
    }
    const contentType = lastRawHeader(req, 'content-type');
    if (contentType === undefined) throw new UploadError(400, 'missing Content-Type header');
    if (/^multipart\/form-data/i.test(contentType)) {
      if (!multipart) throw new UploadError(415, 'multipart/form-data uploads are not enabled');
      return multipart(ctx, location, services);
    }
    if (!location.resumable) throw new UploadError(415, `Content-Type ${contentType || '(empty)'} needs upload_resumable on; this location takes multipart/form-data`);
    return handleRawUpload(ctx, location, services);
  };
}

/** D22: `GET`/`HEAD` with a Session-ID reports the received ranges; without one it is a 405 as in the module. */
async function statusQuery(ctx: Parameters<Middleware>[0], location: LocationConfig, services: UploadServices): Promise<void> {
  const value = lastRawHeader(ctx.req, 'session-id', 'x-session-id');
  if (value === undefined) throw new UploadError(405, `method ${ctx.req.method} needs a Session-ID header here`, { Allow: 'POST, OPTIONS' });
  const parsed = parseSessionId(value, location.sessionIdMaxLength);
  if (!parsed.ok) throw new UploadError(400, parsed.reason);
  const record = await services.sessions(location).status(parsed.id);
  if (!record) throw new UploadError(404, `unknown session ${parsed.id}`);
  // A hand-off claimed by a dead process is not in progress: the client should re-send a segment.
  sendSessionStatus(ctx, record, uploadState(record, Date.now(), services.policy(location), services.actor(location)));
}
