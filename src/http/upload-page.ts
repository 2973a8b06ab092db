/**
 * The upload page (`upload_demo_page on;`): `GET /` serves page/index.html with the settings the
 * page needs (which location takes the uploads, where progress is reported), and `/_page/*` its
 * script and style sheet. The page uploads with the client bundle at `/client.js`.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Middleware } from 'koa';
import type { GatewayConfig } from '../config/types';
import { HttpError } from '../protocol/http-errors';

/** page/ of the package (beside src/ and dist/). */
export const PAGE_DIR = path.resolve(__dirname, '..', '..', 'page');
export const PAGE_ASSET_PREFIX = '/_page/';

const ASSETS: ReadonlyMap<string, [file: string, type: string]> = new Map([
  ['/', ['index.html', 'text/html; charset=utf-8']],
  // tus-js-client's browser build, copied there by `npm run build`.
  [`${PAGE_ASSET_PREFIX}tus.js`, [path.join('..', 'dist', 'client', 'tus.js'), 'application/javascript; charset=utf-8']],
  [`${PAGE_ASSET_PREFIX}app.js`, ['app.js', 'application/javascript; charset=utf-8']],
  [`${PAGE_ASSET_PREFIX}style.css`, ['style.css', 'text/css; charset=utf-8']],
]);

/** What the page is told about the gateway (a JSON block in the HTML). */
export interface PageSettings {
  /** The resumable upload location (null when there is none). */
  uploadUrl: string | null;
  /** The progress location that reports the upload location's zone, if any. */
  progressUrl: string | null;
  /** The header the uploads carry their progress id in (`upload_progress_header` of the upload location). */
  progressHeader: string | null;
  /** The query argument the progress location reads the id from (its `upload_progress_header`). */
  progressArgument: string | null;
  segmentSize: number;
  concurrency: number;
  /** The upload location also speaks tus (`upload_tus on`): the page offers it (tus-js-client at /_page/tus.js). */
  tus: boolean;
}

const DEFAULT_SEGMENT = 8 * 1024 * 1024;

export function pageSettings(config: GatewayConfig): PageSettings {
  const upload = config.locations.find((l) => l.resumable) ?? null;
  const report = upload?.trackUploads ? config.progressLocations.find((p) => p.zone === upload.trackUploads!.zone) ?? null : null;
  const limit = upload?.clientMaxBodySize ?? 0;
  return {
    uploadUrl: upload ? upload.path : null,
    progressUrl: report ? report.path : null,
    progressHeader: report ? upload!.progressHeader : null,
    progressArgument: report ? report.header : null,
    segmentSize: limit > 0 ? Math.min(DEFAULT_SEGMENT, limit) : DEFAULT_SEGMENT,
    concurrency: 3,
    tus: upload?.tus ?? false,
  };
}

/** Serves the page when `config.demoPage` is on; shadows `GET /` only (and `/_page/*`). */
export function uploadPage(config: GatewayConfig): Middleware {
  const settings = pageSettings(config);
  const block = `<script id="upload-gateway-settings" type="application/json">${JSON.stringify(settings).replace(/</g, '\\u003c')}</script>`;
  return async (ctx, next) => {
    const asset = ASSETS.get(ctx.path);
    if (!config.demoPage || !asset || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const [file, type] = asset;
    const text = await readFile(path.join(PAGE_DIR, file), 'utf8').catch(() => null);
    if (text === null) throw new HttpError(404, `the upload page is missing (${file} in ${PAGE_DIR})`);
    ctx.type = type;
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = file === 'index.html' ? text.replace('<!--upload-gateway-settings-->', block) : text;
  };
}
