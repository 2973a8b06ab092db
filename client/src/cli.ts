/**
 * `upload-gateway upload FILE --url URL [--segment 8MiB] [--concurrency 4] …`: a resumable
 * command-line uploader with a progress bar. Interrupted (Ctrl-C) and run again with the same
 * file, it asks the server what it has and sends only the rest.
 */
import { SingleBar } from 'cli-progress';
import * as http from 'node:http';
import * as https from 'node:https';
import { fileUploader, sessionIdFor } from './node';
import { isAbortError, UploadError } from './core/retry';
import type { Progress } from './core/progress';
import type { UploaderOptions } from './core/types';
import { parseArgs as parseCommandLine } from 'node:util';
import { uploadWithTus } from './tus-upload';

export const DEFAULT_URL = 'http://127.0.0.1:8080/upload';

export const USAGE = `usage: upload-gateway upload FILE [--url URL] [options]

Uploads FILE with the resumable protocol of nginx_upload_module; interrupted (Ctrl-C) and run
again, it continues where the server stopped.

  --url URL            the upload location (default ${DEFAULT_URL})
  --segment SIZE       segment size, e.g. 8MiB, 512k, 1048576 (default 8MiB)
  --concurrency N      segments in flight at once (default 4)
  --session ID         Session-ID (default: derived from name, size, mtime and content)
  --header 'N: V'      extra request header, repeatable (e.g. Authorization)
  --retries N          retries per request on network errors and 5xx (default 10)
  --checksum ALG       md5 or sha256 checksum of every segment (D21)
  --name NAME          file name sent to the server (default: the file's)
  --type TYPE          Content-Type of the segments (default application/octet-stream)
  --protocol P         segments (the module's, default) or tus (tus 1.0, for a location with
                       upload_tus on; its upload URL is kept in ~/.upload-gateway to resume)
  --quiet              no progress output
`;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** `8MiB`, `8M`, `512k`, `1048576` → bytes (binary multiples, as nginx). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`invalid size ${JSON.stringify(text)} (e.g. 8MiB, 512k, 1048576)`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`invalid size ${JSON.stringify(text)}`);
  return bytes;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/** ` 42.0% [=========>           ] 12.0 MiB / 28.6 MiB  4.20 MiB/s  ETA 0:04` (logs without a terminal) */
export function progressLine(p: Progress, width = 24): string {
  const filled = Math.min(width, Math.floor((p.percent / 100) * width));
  const bar = filled >= width ? '='.repeat(width) : '='.repeat(filled) + '>' + ' '.repeat(width - filled - 1);
  const speed = p.bytesPerSecond > 0 ? `${formatBytes(p.bytesPerSecond)}/s` : '-- B/s';
  return `${p.percent.toFixed(1).padStart(5)}% [${bar}] ${formatBytes(p.loaded)} / ${formatBytes(p.total)}  ${speed}  ETA ${formatDuration(p.etaSeconds)}`;
}

interface Args {
  file: string;
  url: string;
  segment: number;
  concurrency: number;
  session?: string;
  headers: Array<[string, string]>;
  retries: number;
  checksum?: 'md5' | 'sha256';
  name?: string;
  type?: string;
  protocol: 'segments' | 'tus';
  quiet: boolean;
}

function parseArgs(argv: string[]): Args | 'help' {
  const { values, positionals } = parseCommandLine({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: DEFAULT_URL },
      segment: { type: 'string' },
      concurrency: { type: 'string' },
      session: { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true, default: [] },
      retries: { type: 'string' },
      checksum: { type: 'string' },
      name: { type: 'string' },
      type: { type: 'string' },
      protocol: { type: 'string', default: 'segments' },
      quiet: { type: 'boolean', short: 'q', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const int = (option: string, v: string | undefined, min: number, fallback: number) => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${option} needs an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const headers = values.header.map((v): [string, string] => {
    const colon = v.indexOf(':');
    if (colon <= 0) throw new Error(`--header needs "Name: value", got ${JSON.stringify(v)}`);
    return [v.slice(0, colon).trim(), v.slice(colon + 1).trim()];
  });
  if (values.protocol !== 'segments' && values.protocol !== 'tus') throw new Error(`--protocol is segments or tus, got ${JSON.stringify(values.protocol)}`);
  if (values.checksum !== undefined && values.checksum !== 'md5' && values.checksum !== 'sha256') {
    throw new Error(`--checksum is md5 or sha256, got ${JSON.stringify(values.checksum)}`);
  }
  const segment = values.segment === undefined ? 8 * 1024 * 1024 : parseSize(values.segment);
  const concurrency = int('concurrency', values.concurrency, 1, 4);
  const retries = int('retries', values.retries, 0, 10);
  if (positionals.length !== 1) throw new Error(positionals.length === 0 ? 'no FILE given' : `one FILE at a time, got ${positionals.length}`);
  return {
    file: positionals[0]!,
    url: values.url,
    segment,
    concurrency,
    session: values.session,
    headers,
    retries,
    checksum: values.checksum as Args['checksum'],
    name: values.name,
    type: values.type,
    protocol: values.protocol as Args['protocol'],
    quiet: values.quiet,
  };
}

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** Runs the command; resolves with the exit code (0 done, 1 failed, 2 usage, 130 interrupted). */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let args: Args;
  try {
    const parsed = parseArgs(argv);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    args = parsed;
  } catch (err) {
    io.stderr.write(`upload-gateway upload: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const say = (text: string) => io.stderr.write(`${text}\n`);
  const tty = Boolean(io.stderr.isTTY);
  // On a terminal, a redrawn bar (cli-progress); otherwise one line per 10 %.
  let bar: SingleBar | null = null;
  let lastDecile = -1;
  const clearBar = () => {
    bar?.stop();
    bar = null;
  };
  const onProgress = (p: Progress) => {
    if (args.quiet) return;
    const values = { done: formatBytes(p.loaded), size: formatBytes(p.total), speed: p.bytesPerSecond > 0 ? `${formatBytes(p.bytesPerSecond)}/s` : '-- B/s', timeLeft: formatDuration(p.etaSeconds) };
    if (tty) {
      if (!bar) {
        bar = new SingleBar({
          stream: io.stderr as NodeJS.WriteStream,
          format: '{percentage}% [{bar}] {done} / {size}  {speed}  ETA {timeLeft}',
          barCompleteChar: '=',
          barIncompleteChar: ' ',
          barsize: 24,
          clearOnComplete: true,
          hideCursor: false,
        });
        bar.start(p.total, p.loaded, values);
      }
      bar.update(p.loaded, values);
    } else {
      const decile = Math.floor(p.percent / 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        say(progressLine(p));
      }
    }
  };

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const isHttps = args.url.startsWith('https:');
  const agent = isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  try {
    if (args.protocol === 'tus') {
      const result = await uploadWithTus({
        file: args.file, url: args.url, chunkSize: args.segment, headers: args.headers, retries: args.retries,
        name: args.name, type: args.type, signal: controller.signal, onProgress,
        onResume: (url) => args.quiet || say(`resuming ${url}`),
      });
      clearBar();
      if (!args.quiet) say(`done: the backend answered ${result.status} (${result.url})`);
      if (result.body !== '') io.stdout.write(result.body.endsWith('\n') ? result.body : `${result.body}\n`);
      return 0;
    }
    const sourceOptions = { name: args.name, type: args.type };
    const sessionId = args.session ?? (await sessionIdFor(args.file, sourceOptions));
    const options: UploaderOptions = {
      ...sourceOptions,
      url: args.url,
      headers: args.headers,
      concurrency: args.concurrency,
      retries: args.retries,
      checksum: args.checksum,
      signal: controller.signal,
      onProgress,
      agent,
      onRetry: ({ error, attempt, delayMs }) => {
        if (args.quiet) return;
        clearBar();
        say(`retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s: ${(error as Error).message}`);
      },
    };
    const uploader = fileUploader(args.file, args.segment, sessionId, options);
    const status = await uploader.fetchStatus();
    if (!args.quiet) {
      say(`${args.file} (${formatBytes(status.total)}) → ${args.url}, session ${sessionId}`);
      const held = status.ranges.reduce((n, r) => n + r.end - r.start + 1, 0);
      if (status.complete) say('the server already has the whole file');
      else if (held > 0) say(`resuming: the server already has ${formatBytes(held)}`);
    }
    const done = await uploader.uploadSegments(status);
    clearBar();
    const r = done.response!;
    if (!args.quiet) say(`done: the backend answered ${r.status}${r.statusText ? ` ${r.statusText}` : ''}`);
    if (r.body !== null && r.body !== '') io.stdout.write(r.body.endsWith('\n') ? r.body : `${r.body}\n`);
    return 0;
  } catch (err) {
    clearBar();
    if (interrupted && isAbortError(err, controller.signal)) {
      say('interrupted: run the same command again to resume');
      return 130;
    }
    const message = err instanceof UploadError || err instanceof Error ? err.message : String(err);
    say(`upload-gateway upload: ${message}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    agent.destroy();
  }
}
