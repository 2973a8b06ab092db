import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import Router from '@koa/router';
import busboy from 'busboy';
import type { Context } from 'koa';
import { HttpError } from './protocol/http-errors';
import { parseArgs } from 'node:util';
import { parseListen } from './config/values';

/** Where the built-in sample backend receives hand-offs (the embedded defaults' upload_pass path). */
export const SAMPLE_BACKEND_PATH = '/_backend/complete';
const FIELDS_LIMIT = 64 * 1024;

/**
 * The original project's sample backend, built in so `npm start` is a working service: it takes
 * the module's generated form, moves the completed file into `filesDir` under its (sanitised)
 * name, answers `200` with the body `complete` (the word the original fileUploader compares
 * against), and serves the files at `/files/<name>`.
 */
export function sampleBackendRouter(filesDir: string, storeDir: string): Router {
  const router = new Router();
  router.post(SAMPLE_BACKEND_PATH, async (ctx) => {
    // Per file the form holds `name` … `path` (resumable: one file; multipart: one group per file).
    const files: Array<{ name: string; path: string }> = [];
    let name = '';
    for (const [field, value] of await readFormFields(ctx)) {
      if (field === 'name') name = value;
      else if (field === 'path') files.push({ name, path: value });
    }
    if (files.length === 0) throw new HttpError(400, 'hand-off without a "path" field');
    await fs.mkdir(filesDir, { recursive: true });
    for (const file of files) {
      if (!path.resolve(file.path).startsWith(path.resolve(storeDir) + path.sep)) throw new HttpError(400, 'path outside the upload store');
      const target = await freeName(filesDir, safeName(file.name));
      await moveFile(file.path, path.join(filesDir, target));
      ctx.append('X-File-Url', `/files/${encodeURIComponent(target)}`);
    }
    ctx.type = 'text/plain';
    ctx.body = 'complete';
  });
  router.get('/files/:name', async (ctx) => {
    const name = ctx.params.name;
    if (name !== safeName(name)) throw new HttpError(404, 'no such file');
    const file = path.join(filesDir, name);
    const stat = await fs.stat(file).catch(() => null);
    if (!stat?.isFile()) throw new HttpError(404, 'no such file');
    ctx.type = 'application/octet-stream';
    ctx.length = stat.size;
    ctx.set('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(name)}`);
    ctx.body = createReadStream(file);
  });
  return router;
}

function readFormFields(ctx: Context): Promise<Array<[string, string]>> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: ctx.req.headers, limits: { fieldSize: FIELDS_LIMIT, files: 0 }, defParamCharset: 'utf8' });
    } catch {
      reject(new HttpError(400, 'expected a multipart/form-data hand-off'));
      return;
    }
    const fields: Array<[string, string]> = [];
    parser.on('field', (name, value) => fields.push([name, value]));
    parser.on('close', () => resolve(fields));
    parser.on('error', () => reject(new HttpError(400, 'malformed multipart hand-off')));
    ctx.req.pipe(parser);
  });
}

/** A file name that is safe in one directory: no separators, no leading dots, not empty. */
export function safeName(name: string): string {
  const cleaned = name.replace(/[\/\\\x00-\x1f]/g, '_').replace(/^\.+/, '').slice(0, 200);
  return cleaned || 'upload.bin';
}

async function freeName(dir: string, name: string): Promise<string> {
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? name : `${stem}-${i}${ext}`;
    try {
      await fs.access(path.join(dir, candidate));
    } catch {
      return candidate;
    }
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fs.copyFile(from, to);
    await fs.rm(from);
  }
}

export interface SampleBackendServer {
  server: import('node:http').Server;
  close(): Promise<void>;
}

/**
 * The sample backend as its own HTTP service (`upload-gateway sample-backend …`), for deployments
 * where it runs beside the gateways (docker compose): the same router, plus `GET /healthz`.
 * `storeDir` is the gateways' `upload_store` (a shared volume), `filesDir` where files are moved.
 */
export async function startSampleBackend(options: { host: string; port: number; filesDir: string; storeDir: string; log?: import('pino').Logger }): Promise<SampleBackendServer> {
  const Koa = (await import('koa')).default;
  const http = await import('node:http');
  await fs.mkdir(options.filesDir, { recursive: true });
  const app = new Koa();
  app.silent = true;
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) options.log?.error({ err, url: ctx.url }, 'sample backend request failed');
      ctx.status = status;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${err instanceof HttpError ? err.message : 'internal error'}\n`;
    }
  });
  app.use(async (ctx, next) => {
    if (ctx.path !== '/healthz') return next();
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = 'ok\n';
  });
  app.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== SAMPLE_BACKEND_PATH) return next();
    const session = ctx.get('Session-ID') || ctx.get('X-Session-ID') || undefined;
    options.log?.info({ session }, 'sample backend: hand-off received');
    await next();
    options.log?.info({ session, status: ctx.status, files: ctx.response.get('X-File-Url') || undefined }, 'sample backend: hand-off answered');
  });
  const router = sampleBackendRouter(options.filesDir, options.storeDir);
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const SAMPLE_BACKEND_USAGE = `usage: upload-gateway sample-backend --listen [ADDR:]PORT --files DIR --store DIR

  Runs the built-in sample backend as its own service (upload_pass http://HOST:PORT${SAMPLE_BACKEND_PATH}):
  it moves each completed file from the gateways' upload_store (--store, a shared directory) to
  --files and serves it at /files/<name>; GET /healthz answers ok.
`;

/** `upload-gateway sample-backend …`: runs until SIGINT/SIGTERM; resolves with an exit code. */
export async function sampleBackendMain(argv: string[]): Promise<number> {
  let listen: { host: string; port: number };
  let filesDir: string;
  let storeDir: string;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { listen: { type: 'string' }, files: { type: 'string' }, store: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    });
    if (values.help) {
      process.stdout.write(SAMPLE_BACKEND_USAGE);
      return 0;
    }
    if (!values.listen || !values.files || !values.store) throw new Error('--listen, --files and --store are required');
    listen = parseListen(values.listen);
    filesDir = path.resolve(values.files);
    storeDir = path.resolve(values.store);
  } catch (err) {
    process.stderr.write(`upload-gateway sample-backend: ${(err as Error).message}\n${SAMPLE_BACKEND_USAGE}`);
    return 2;
  }
  const pino = (await import('pino')).default;
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info' });
  let backend: SampleBackendServer;
  try {
    backend = await startSampleBackend({ ...listen, filesDir, storeDir, log });
  } catch (err) {
    process.stderr.write(`upload-gateway sample-backend: ${(err as Error).message}\n`);
    return 1;
  }
  log.info({ address: `${listen.host}:${listen.port}`, files: filesDir, store: storeDir }, 'sample backend listening');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await backend.close();
  return 0;
}
