/**
 * `upload-gateway upload FILE --protocol tus`: the file uploaded with tus 1.0 (tus-js-client) to
 * a location with `upload_tus on`. Interrupted and run again, it resumes the same upload: its URL
 * is kept in `~/.upload-gateway/tus-uploads.json` under the file's fingerprint (path, size,
 * modification time), and the server's offset says what is left.
 */
import { createReadStream, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tus from 'tus-js-client';
import { ProgressTracker, type Progress } from './core/progress';

/** tus-js-client's Node build exports it; its typings (4.3.1) do not declare it. */
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (file: string) => tus.UrlStorage };

export interface TusUploadOptions {
  file: string;
  /** The creation URL (the location). */
  url: string;
  /** Bytes per PATCH. */
  chunkSize: number;
  headers: Array<[string, string]>;
  retries: number;
  name?: string;
  type?: string;
  signal: AbortSignal;
  onProgress(p: Progress): void;
  /** Told when an earlier run's upload is resumed. */
  onResume?(url: string): void;
}

export interface TusResult {
  status: number;
  body: string;
  url: string;
}

/** Where the upload URLs of earlier runs are kept. */
export function tusUrlStorage(): string {
  return path.join(os.homedir(), '.upload-gateway', 'tus-uploads.json');
}

export async function uploadWithTus(options: TusUploadOptions): Promise<TusResult> {
  const storage = tusUrlStorage();
  mkdirSync(path.dirname(storage), { recursive: true });
  const source = createReadStream(options.file);
  let tracker: ProgressTracker | null = null;
  return new Promise<TusResult>((resolve, reject) => {
    const upload = new tus.Upload(source, {
      endpoint: options.url,
      chunkSize: options.chunkSize,
      headers: Object.fromEntries(options.headers),
      metadata: { filename: options.name ?? path.basename(options.file), filetype: options.type ?? 'application/octet-stream' },
      retryDelays: Array.from({ length: options.retries }, (_, i) => Math.min(30_000, 500 * 2 ** i)),
      urlStorage: new FileUrlStorage(storage),
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        tracker ??= new ProgressTracker(total, options.onProgress);
        tracker.setInFlight(0, sent);
      },
      onSuccess: (payload) => {
        void tracker?.finish();
        const res = payload.lastResponse;
        resolve({ status: res.getStatus(), body: res.getBody() ?? '', url: upload.url ?? '' });
      },
      onError: reject,
    });
    options.signal.addEventListener('abort', () => {
      void upload.abort().finally(() => reject(options.signal.reason));
    }, { once: true });
    upload.findPreviousUploads().then((previous) => {
      const last = previous.sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime))[0];
      if (last) {
        upload.resumeFromPreviousUpload(last);
        if (last.uploadUrl) options.onResume?.(last.uploadUrl);
      }
      upload.start();
    }, reject);
  });
}
