/**
 * The golden corpus recorded from the real nginx_upload_module, replayed against a real gateway
 * process in the runner's default `port` mode (deviations D1–D23 applied by the runner).
 */
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { SHARED_DIR, freePort, run, startGateway, tempDir, type GatewayProcess } from './helpers/process';

const CONFORMANCE_DIR = path.join(SHARED_DIR, 'conformance');
// The runner only runs when started by its real path (it compares import.meta.url with argv[1]).
const CONFORMANCE = existsSync(CONFORMANCE_DIR) ? realpathSync(CONFORMANCE_DIR) : CONFORMANCE_DIR;

describe('conformance corpus (port mode)', () => {
  let gateway: GatewayProcess;
  let store: string;
  let backendPort: number;

  beforeAll(async () => {
    if (!existsSync(path.join(CONFORMANCE, 'run.mjs'))) {
      throw new Error(`conformance corpus not found at ${CONFORMANCE}: the shared/ directory must sit beside the checkout`);
    }
    const work = tempDir('conformance-');
    store = path.join(work, 'store');
    const state = path.join(work, 'state');
    mkdirSync(store);
    mkdirSync(state);
    const port = await freePort();
    backendPort = await freePort();
    const config = readFileSync(path.join(CONFORMANCE, 'gateway.conf.template'), 'utf8')
      .replace(/__PORT__/g, String(port))
      .replace(/__STORE__/g, store)
      .replace(/__STATE__/g, state)
      .replace(/__BACKEND__/g, `127.0.0.1:${backendPort}`);
    gateway = await startGateway(config, { port, dir: work });
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  test('every case passes', async () => {
    const { code, output } = await run(process.execPath, [
      path.join(CONFORMANCE, 'run.mjs'),
      '--base', gateway.url,
      '--backend-port', String(backendPort),
      '--store', store,
      '--cases', path.join(CONFORMANCE, 'cases'),
    ], { cwd: CONFORMANCE });
    const failures = output.split('\n').filter((line) => line.startsWith('FAIL'));
    const summary = output.trim().split('\n').pop() ?? '';
    // Printed so CI logs show the corpus result line.
    console.log(`conformance: ${summary}`);
    expect(failures).toEqual([]);
    expect(summary).toMatch(/^\d+ passed, 0 failed$/);
    expect(code).toBe(0);
  }, 300_000);
});
