// Builds the client into dist/client/ (run by `npm run build` after the server's tsc):
//   index.mjs / index.cjs   Node, ESM and CommonJS (`upload-gateway/client`), p-limit bundled in
//   cli.cjs                 the `upload-gateway upload` command (loaded by dist/cli.js)
//   client.js               browser script for <script src="/client.js"> (served by the gateway):
//                           global `UploadGateway`, and `fileUploader` as the original defined it
//   browser.mjs             browser ES module (the "browser" export condition, for bundlers)
//   tus.js                  tus-js-client's browser build (global `tus`), for the upload page's tus option
//   types/                  declarations (tsc)
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'client');
const src = (f) => path.join(here, 'src', f);
rmSync(out, { recursive: true, force: true });

const common = { bundle: true, sourcemap: true, legalComments: 'none', logLevel: 'warning' };
const node = { ...common, platform: 'node', target: 'node20' };
const browser = { ...common, platform: 'browser', target: ['chrome100', 'firefox100', 'safari15'] };

await Promise.all([
  build({ ...node, entryPoints: [src('node.ts')], format: 'esm', outfile: path.join(out, 'index.mjs') }),
  build({ ...node, entryPoints: [src('node.ts')], format: 'cjs', outfile: path.join(out, 'index.cjs') }),
  build({ ...node, entryPoints: [src('cli.ts')], format: 'cjs', outfile: path.join(out, 'cli.cjs') }),
  build({
    ...browser,
    entryPoints: [src('browser.ts')],
    format: 'iife',
    globalName: 'UploadGateway',
    outfile: path.join(out, 'client.js'),
    footer: { js: 'if (typeof globalThis.fileUploader === "undefined") globalThis.fileUploader = UploadGateway.fileUploader;' },
  }),
  build({ ...browser, entryPoints: [src('browser.ts')], format: 'esm', outfile: path.join(out, 'browser.mjs') }),
]);

const require = createRequire(import.meta.url);
copyFileSync(require.resolve('tus-js-client/dist/tus.min.js'), path.join(out, 'tus.js'));

const tsc = require.resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', path.join(here, 'tsconfig.json')], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
