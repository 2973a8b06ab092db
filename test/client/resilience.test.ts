/**
 * The client survives what networks and servers do: a real gateway process killed (SIGKILL) and
 * restarted twice in the middle of an upload, and a TCP relay that cuts connections at random
 * (mid-request, and after the gateway answered but before the client read it). Either way the
 * backend gets the identical file, handed off exactly once.
 */
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { CaptureBackend, startTestGateway, type TestGateway } from '../helpers/gateway';
import { freePort, startGateway, tempDir, type GatewayProcess } from '../helpers/process';
import { randomFile, sleep } from '../helpers/segments';
import { CountingProxy, DroppingRelay, handedOff, loadClient } from './helpers';

const client = loadClient();
const KiB = 1024;
const MiB = 1024 * KiB;

describe('a gateway process killed and restarted mid-upload', () => {
  let backend: CaptureBackend;
  let gateway: GatewayProcess | undefined;
  let proxy: CountingProxy;
  let dir: string;

  beforeAll(async () => {
    backend = await new CaptureBackend().start();
    dir = tempDir('client-kill-');
  });

  afterAll(async () => {
    await gateway?.kill();
    await proxy?.stop();
    await backend?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kill -9 twice while segments are in flight; the upload completes, identical, handed off once', async () => {
    const port = await freePort();
    const config = `listen 127.0.0.1:${port};
client_max_body_size 100m;
location /upload {
    upload_pass http://127.0.0.1:${backend.port};
    upload_resumable on;
    upload_store ${path.join(dir, 'store')} 1;
    upload_state_store ${path.join(dir, 'state')};
    upload_set_form_field name "$upload_file_name";
    upload_set_form_field path "$upload_tmp_path";
    upload_aggregate_form_field size "$upload_file_size";
}
`;
    gateway = await startGateway(config, { port, dir });
    // A 6 MiB/s uplink in front, so the kills land while segments are being received.
    proxy = await new CountingProxy(port).start();
    proxy.throttleBytesPerSecond = 6 * MiB;

    const data = randomFile(6 * MiB + 321, 21);
    const kills: number[] = [];
    let restarting: Promise<void> | null = null;
    const killAt = [0.3, 0.65];
    const retries: string[] = [];
    const uploader = client.fileUploader(data, 256 * KiB, 'killed-gateway', {
      url: proxy.url,
      name: 'killed.bin',
      concurrency: 3,
      retries: 60,
      retryDelay: 50,
      maxRetryDelay: 400,
      onRetry: (r) => retries.push((r.error as Error).message),
      onProgress: (p) => {
        if (restarting || kills.length >= killAt.length || p.loaded < killAt[kills.length]! * p.total) return;
        kills.push(p.loaded);
        restarting = (async () => {
          await gateway!.kill();
          await sleep(300);
          gateway = await startGateway(config, { port, dir });
          restarting = null;
        })();
      },
    });
    const done = await uploader.uploadSegments(await uploader.fetchStatus());
    expect(kills).toHaveLength(2);
    expect(retries.length).toBeGreaterThan(0);
    expect(done).toMatchObject({ completed: true, complete: true, response: { status: 200, body: 'backend 200\n' } });
    const { calls, data: stored } = handedOff(backend, 'killed.bin');
    expect(calls).toHaveLength(1);
    expect(stored!.equals(data)).toBe(true);
    expect(backend.field(calls[0]!, 'size')).toBe(String(data.length));
  });
});

describe('a relay that drops connections at random', () => {
  let gw: TestGateway;
  let relay: DroppingRelay;

  beforeAll(async () => {
    gw = await startTestGateway();
  });

  afterAll(async () => {
    await relay?.stop();
    await gw?.close();
    if (gw) rmSync(gw.dir, { recursive: true, force: true });
  });

  test('requests cut mid-body and answers lost: the file still arrives identical, handed off once', async () => {
    let requestCuts = 0;
    let answerCuts = 0;
    for (const seed of [7, 10, 11]) {
      relay = await new DroppingRelay(gw.port, { seed, probability: 0.6, maxCutBytes: 600 * KiB }).start();
      const data = randomFile(3 * MiB + seed, 22 + seed);
      const name = `dropped-${seed}.bin`;
      const uploader = client.fileUploader(data, 128 * KiB, `dropping-relay-${seed}`, {
        url: relay.url,
        name,
        concurrency: 3,
        retries: 100,
        retryDelay: 10,
        maxRetryDelay: 200,
        checksum: 'md5',
      });
      const done = await uploader.uploadSegments(await uploader.fetchStatus());
      expect(done.complete).toBe(true);
      const { calls, data: stored } = handedOff(gw.backend, name);
      expect(calls).toHaveLength(1);
      expect(stored!.equals(data)).toBe(true);
      requestCuts += relay.requestCuts;
      answerCuts += relay.answerCuts;
      await relay.stop();
    }
    expect(requestCuts).toBeGreaterThanOrEqual(3);
    expect(answerCuts).toBeGreaterThanOrEqual(2);
  });
});
