import type { Middleware } from 'koa';
import type { LocationConfig } from '../config/types';
import { HttpError } from '../protocol/http-errors';
import { handleRawUpload } from './raw-upload';
import { uploadState } from '../session/rules';
import { renderAddHeaders, variableLookup } from './variables';
import { checkBodySize, declaredLength, lastRawHeader } from '../http/request';
import { sendSessionStatus } from './responses';
import type { UploadServices } from './services';
import { segmentHeaders } from './segment-headers';
import { discoveryHeaders, resumableRequest } from './resumable-protocols';
import { handleTus } from './tus';
import { handleIetf } from './ietf';

/** Multipart/form-data handling is composed in separately (its own handler). */
export type MultipartHandler = (ctx: Parameters<Middleware>[0], location: LocationConfig, services: UploadServices) => Promise<void>;

/** Dispatch inside one upload location, in the module's order (§1). */
export function uploadLocation(location: LocationConfig, services: UploadServices, multipart: MultipartHandler | null): Middleware {
  return async (ctx) => {
    const req = ctx.req;
    checkBodySize(declaredLength(req), location.clientMaxBodySize);
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
        throw new HttpError(405, `method ${req.method} not allowed here`, { Allow: 'POST, OPTIONS' });
    }
    const contentType = lastRawHeader(req, 'content-type');
    if (contentType === undefined) throw new HttpError(400, 'missing Content-Type header');
    if (/^multipart\/form-data/i.test(contentType)) {
      if (!multipart) throw new HttpError(415, 'multipart/form-data uploads are not enabled');
      return multipart(ctx, location, services);
    }
    if (!location.resumable) throw new HttpError(415, `Content-Type ${contentType || '(empty)'} needs upload_resumable on; this location takes multipart/form-data`);
    return handleRawUpload(ctx, location, services);
  };
}

/** D22: `GET`/`HEAD` with a Session-ID reports the received ranges; without one it is a 405 as in the module. */
async function statusQuery(ctx: Parameters<Middleware>[0], location: LocationConfig, services: UploadServices): Promise<void> {
  const { sessionId, problem } = segmentHeaders(ctx, location);
  if (problem && sessionId === null) throw new HttpError(400, problem);
  if (sessionId === null) throw new HttpError(405, `method ${ctx.req.method} needs a Session-ID header here`, { Allow: 'POST, OPTIONS' });
  const record = await services.sessions(location).status(sessionId);
  if (!record) throw new HttpError(404, `unknown session ${sessionId}`);
  // A hand-off claimed by a dead process is not in progress: the client should re-send a segment.
  sendSessionStatus(ctx, record, uploadState(record, Date.now(), services.policy(location), services.actor(location)));
}
