/**
 * `upload-gateway upload FILE --protocol tus` (the built CLI, tus-js-client inside): interrupted
 * with Ctrl-C and run again, it resumes the same upload from the server's offset; the backend gets
 * the file once, byte-identical.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers/process';
import { runUploadCli } from '../client/helpers';
import { dataPath, sleep, type TestGateway } from '../helpers/gateway';
import { randomFile } from '../helpers/segments';
import { expectHandedOffOnce, request, startTusGateway, TUS } from '../helpers/tus';

let gw: TestGateway;
let home: string;

beforeAll(async () => {
  gw = await startTusGateway('    upload_limit_rate 1m;');
  home = tempDir('tus-cli-home-');
});
afterAll(() => gw.close());

function run(args: string[]) {
  return runUploadCli(args, { cwd: home, env: { ...process.env, HOME: home } });
}

test('--protocol tus: Ctrl-C mid-upload, run again: the same upload resumes and is handed off once', async () => {
  const data = randomFile(3 * 1024 * 1024 + 5, 61);
  const file = path.join(home, 'cli-tus.bin');
  writeFileSync(file, data);
  const args = [file, '--url', `${gw.url}/upload`, '--protocol', 'tus', '--segment', '256KiB'];
  const first = run(args);
  const stored = path.join(home, '.upload-gateway', 'tus-uploads.json');
  let url: string | undefined;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    url = existsSync(stored) ? (Object.values(JSON.parse(readFileSync(stored, 'utf8') || '{}')) as Array<{ uploadUrl?: string }>)[0]?.uploadUrl : undefined;
    if (url && Number((await request(gw, 'HEAD', new URL(url).pathname, [[...TUS]])).headers['upload-offset']) >= 512 * 1024) break;
    await sleep(50);
  }
  first.interrupt();
  const interrupted = await first.done;
  expect([interrupted.code, interrupted.stderr]).toEqual([130, expect.stringContaining('interrupted: run the same command again to resume')]);
  const id = new URL(url!).pathname.split('/').pop()!;
  const second = await run(args).done;
  expect(second.stderr).toContain(`resuming ${url}`);
  expect(second.code).toBe(0);
  expect(second.stdout).toBe('backend 200\n');
  const call = expectHandedOffOnce(gw, 'cli-tus.bin', data);
  expect(gw.backend.field(call, 'path')).toBe(dataPath(gw, id));
}, 60_000);
