/**
 * The configuration used when none is given: one resumable upload location handing completed
 * uploads to the gateway's built-in sample backend, upload progress at `/progress` (JSON polling
 * and Server-Sent Events), the upload page at `/` and Prometheus metrics at `/metrics` (loopback
 * only). It is written as configuration text and parsed
 * like any file, so there is one way to configure the gateway.
 */
import * as path from 'node:path';
import { parseConfig } from './parse';
import type { GatewayConfig } from './types';

export interface EmbeddedDefaultsOptions {
  /** Where uploads, sessions and finished files go; relative to the working directory. Default `./data`. */
  dataDir?: string;
  /** Default 127.0.0.1:8080. */
  listen?: { host: string; port: number };
}

/** Path of the sample backend's completion handler on the gateway's own server. */
export const SAMPLE_BACKEND_COMPLETE_PATH = '/_backend/complete';

function hostForUrl(host: string): string {
  // A wildcard address cannot be connected to portably: the sample backend is reached over loopback.
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function hostForListen(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The configuration text of the embedded defaults (store paths relative to the data directory). */
export function embeddedConfigText(listen: { host: string; port: number }): string {
  return `# Built-in configuration of the upload gateway (used when no configuration file is given).
listen ${hostForListen(listen.host)}:${listen.port};

# The upload page at / (drag and drop, progress, pause, resume), built on /client.js.
upload_demo_page on;
# Upload progress (nginx-upload-progress-module's directives): uploads sending X-Progress-ID are
# tracked in the zone "uploads"; /progress reports them (JSON, or an event stream).
upload_progress uploads 1m;

location /upload {
    upload_pass http://${hostForUrl(listen.host)}:${listen.port}${SAMPLE_BACKEND_COMPLETE_PATH};
    upload_resumable on;
    # tus 1.0 and the IETF resumable-upload draft on the same sessions (Uppy, tus-js-client).
    upload_tus on;
    upload_store store 1;
    upload_state_store state;
    client_max_body_size 100m;

    upload_set_form_field name "$upload_file_name";
    upload_set_form_field content_type "$upload_content_type";
    upload_set_form_field path "$upload_tmp_path";

    upload_aggregate_form_field md5 "$upload_file_md5";
    upload_aggregate_form_field size "$upload_file_size";

    upload_cleanup 400 404 499 500-505;

    track_uploads uploads 30s;
}

location = /progress {
    upload_progress_json_output;
    report_uploads uploads;
}

# Prometheus metrics of this gateway, for this machine only.
location = /metrics {
    upload_metrics;
    allow 127.0.0.1;
    allow ::1;
    deny all;
}
`;
}

export function embeddedDefaults(options: EmbeddedDefaultsOptions = {}): GatewayConfig {
  const dataDir = path.resolve(process.cwd(), options.dataDir ?? 'data');
  const listen = options.listen ?? { host: '127.0.0.1', port: 8080 };
  // Paths in the text are relative, resolved against the data directory: no quoting of arbitrary paths.
  const config = parseConfig(embeddedConfigText(listen), '<defaults>', { baseDir: dataDir });
  return { ...config, sampleBackend: { filesDir: path.join(dataDir, 'files') } };
}
