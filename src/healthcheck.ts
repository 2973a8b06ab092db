/**
 * `upload-gateway healthcheck URL`: exits 0 when `GET URL` answers 200, else 1 with the reason on
 * stderr (the answer's first line, e.g. /healthz's 503 reason). For container healthchecks (the
 * image's HEALTHCHECK, the compose file's sample backend): every argument is one word, because
 * podman driven by docker-compose 1.x splits a healthcheck's arguments at every space, which broke
 * `node -e "<script>"` there.
 */
import * as http from 'node:http';

const USAGE = `usage: upload-gateway healthcheck URL

  GET URL (http:), exit 0 when it answers 200, else 1 with the reason; gives up after 5 s.
`;

const TIMEOUT_MS = 5000;

/** null when `url` answers 200 within `timeoutMs`, else why not. */
export function checkHealth(url: URL, timeoutMs = TIMEOUT_MS): Promise<string | null> {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 200) body += chunk;
      });
      response.on('end', () => {
        if (response.statusCode === 200) resolve(null);
        else resolve(`${response.statusCode} ${body.split('\n')[0].slice(0, 200)}`.trim());
      });
      response.on('error', (err) => resolve(err.message));
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    request.on('error', (err) => resolve(err.message));
  });
}

/** `upload-gateway healthcheck …`: resolves with the exit code. */
export async function healthcheckMain(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  let url: URL | null = null;
  try {
    if (argv.length === 1) url = new URL(argv[0]);
  } catch {
    // reported below
  }
  if (!url || url.protocol !== 'http:') {
    process.stderr.write(`upload-gateway healthcheck: expected one http:// URL, got ${JSON.stringify(argv)}\n${USAGE}`);
    return 2;
  }
  const problem = await checkHealth(url);
  if (problem === null) return 0;
  process.stderr.write(`upload-gateway healthcheck: ${url.href}: ${problem}\n`);
  return 1;
}
