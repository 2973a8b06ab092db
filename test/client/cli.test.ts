/**
 * `upload-gateway upload FILE --url URL …` as a person runs it: the real binary, interrupted with
 * SIGINT (Ctrl-C) in the middle, then run again: it continues from the server's ranges, sends no
 * acknowledged byte again, and the backend gets the identical file.
 */
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { REPO_ROOT, run, tempDir } from '../helpers/process';
import { coveredBytes, randomFile, sleep } from '../helpers/segments';
import { checkNoByteTwice, CountingProxy, handedOff, runUploadCli } from './helpers';

const BIN = path.join(REPO_ROOT, 'bin/upload-gateway.js');
const MiB = 1024 * 1024;

let gw: TestGateway;
let proxy: CountingProxy;
let dir: string;

beforeAll(async () => {
  gw = await startTestGateway();
  proxy = await new CountingProxy(gw.port).start();
  dir = tempDir('client-cli-');
});

afterAll(async () => {
  await proxy?.stop();
  await gw?.close();
  for (const d of [gw?.dir, dir]) if (d) rmSync(d, { recursive: true, force: true });
});

function upload(args: string[]): ReturnType<typeof runUploadCli> {
  return runUploadCli(args, { cwd: dir });
}

test('Ctrl-C in the middle, run again: it resumes and finishes; no acknowledged byte is sent twice', async () => {
  const data = randomFile(6 * MiB + 77, 31);
  const file = path.join(dir, 'cli upload.bin');
  writeFileSync(file, data);
  proxy.throttleBytesPerSecond = 4 * MiB;
  const args = [file, '--url', proxy.url, '--segment', '512KiB', '--concurrency', '2', '--checksum', 'sha256'];

  const first = upload(args);
  // Wait until the server acknowledged a third of the file, then press Ctrl-C.
  const deadline = Date.now() + 15_000;
  while (coveredBytes(proxy.acknowledged()) < data.length / 3 && Date.now() < deadline) await sleep(20);
  first.interrupt();
  const interrupted = await first.done;
  expect(interrupted.stderr).toContain('interrupted: run the same command again to resume');
  expect(interrupted.code).toBe(130);
  expect(interrupted.stderr).toMatch(/%.*ETA/);
  expect(coveredBytes(proxy.acknowledged())).toBeLessThan(data.length);
  // The segments Ctrl-C cut off: their answers never reached the client.
  const cut = proxy.segments().filter((r) => !r.acknowledged);

  proxy.throttleBytesPerSecond = 0;
  const second = await upload(args).done;
  expect(second.stderr).toMatch(/resuming: the server already has \d/);
  expect(second.stderr).toContain('done: the backend answered 200 OK');
  expect(second.code).toBe(0);
  expect(second.stdout).toBe('backend 200\n');

  const { calls, data: stored } = handedOff(gw.backend, 'cli upload.bin');
  expect(calls).toHaveLength(1);
  expect(stored!.equals(data)).toBe(true);
  // No byte the client knew to be on the server went again (counted at the proxy); only the
  // segments Ctrl-C cut off may have gone twice.
  const counts = checkNoByteTwice(proxy.segments(), data.length, cut);
  expect(counts.total).toBeGreaterThanOrEqual(data.length);

  // A third run finds the upload complete and sends nothing.
  const count = proxy.segments().length;
  const third = await upload(args).done;
  expect(third.code).toBe(0);
  expect(third.stderr).toContain('the server already has the whole file');
  expect(proxy.segments()).toHaveLength(count);
});

test('--help, usage errors and an unreachable server', async () => {
  const help = await run(process.execPath, [BIN, 'upload', '--help']);
  expect(help.code).toBe(0);
  expect(help.output).toContain('usage: upload-gateway upload FILE');
  const usage = await run(process.execPath, [BIN, 'upload', '--segment', 'lots']);
  expect(usage.code).toBe(2);
  expect(usage.output).toContain('invalid size "lots"');
  const missing = await run(process.execPath, [BIN, 'upload', path.join(dir, 'nope.bin')]);
  expect(missing.code).toBe(1);
  expect(missing.output).toContain('ENOENT');
  writeFileSync(path.join(dir, 'small.bin'), 'x');
  const refused = await run(process.execPath, [BIN, 'upload', path.join(dir, 'small.bin'), '--url', 'http://127.0.0.1:1/upload', '--retries', '1', '--quiet']);
  expect(refused.code).toBe(1);
  expect(refused.output).toContain('ECONNREFUSED');
  // The server's own usage still works and mentions the command.
  const serverHelp = await run(process.execPath, [BIN, '--help']);
  expect(serverHelp.output).toContain('upload-gateway upload FILE');
});
