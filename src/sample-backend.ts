import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import Router from '@koa/router';
import busboy from 'busboy';
import type { Context } from 'koa';
import { UploadError } from './protocol/http-errors';

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
    if (files.length === 0) throw new UploadError(400, 'hand-off without a "path" field');
    await fs.mkdir(filesDir, { recursive: true });
    for (const file of files) {
      if (!path.resolve(file.path).startsWith(path.resolve(storeDir) + path.sep)) throw new UploadError(400, 'path outside the upload store');
      const target = await freeName(filesDir, safeName(file.name));
      await moveFile(file.path, path.join(filesDir, target));
      ctx.append('X-File-Url', `/files/${encodeURIComponent(target)}`);
    }
    ctx.type = 'text/plain';
    ctx.body = 'complete';
  });
  router.get('/files/:name', async (ctx) => {
    const name = ctx.params.name;
    if (name !== safeName(name)) throw new UploadError(404, 'no such file');
    const file = path.join(filesDir, name);
    const stat = await fs.stat(file).catch(() => null);
    if (!stat?.isFile()) throw new UploadError(404, 'no such file');
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
      reject(new UploadError(400, 'expected a multipart/form-data hand-off'));
      return;
    }
    const fields: Array<[string, string]> = [];
    parser.on('field', (name, value) => fields.push([name, value]));
    parser.on('close', () => resolve(fields));
    parser.on('error', () => reject(new UploadError(400, 'malformed multipart hand-off')));
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
