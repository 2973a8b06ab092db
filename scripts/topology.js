#!/usr/bin/env node
'use strict';
/**
 * `npm run topology`: the docker-compose deployment (docker/) natively on loopback — nginx, two
 * gateway processes, redis-server, the sample backend and prometheus — until Ctrl-C. The same code as
 * test/topology.test.ts (test/helpers/topology.ts), loaded through TypeScript's transpiler.
 *
 *   npm run topology [-- --port 8080] [--keep]
 *
 * Needs the Debian packages nginx, redis-server and prometheus, and the built gateway (the npm script builds).
 */
const fs = require('node:fs');
const ts = require('typescript');

// Transpile-only loader for the repository's .ts files (types are checked by `npm run typecheck`).
require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(outputText, filename);
};

const { startTopology } = require('../test/helpers/topology.ts');

async function main() {
  const args = process.argv.slice(2);
  let nginxPort = 8080;
  let keepDir = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') nginxPort = Number(args[++i]);
    else if (args[i] === '--keep') keepDir = true;
    else {
      process.stderr.write(`usage: npm run topology [-- --port PORT] [--keep]\n`);
      return 2;
    }
  }
  const topology = await startTopology({ nginxPort, keepDir, logLevel: 'info' });
  const { ports } = topology;
  process.stdout.write(`upload-gateway topology (docker/docker-compose.yml, natively on loopback):

  nginx (entry point)   ${topology.url}/upload        files: ${topology.url}/files/<name>   health: ${topology.url}/healthz
  gateway1              http://127.0.0.1:${ports.gateways[0]}   (docker/gateway.conf)
  gateway2              http://127.0.0.1:${ports.gateways[1]}
  sample backend        http://127.0.0.1:${ports.backend}
  redis                 redis://127.0.0.1:${ports.redis}/0
  prometheus            http://127.0.0.1:${ports.prometheus}   (docker/prometheus/prometheus.yml; gateways' /metrics)
  shared volume         ${topology.dataDir}
  nginx config          ${topology.nginx.configFile}

Try: curl -i ${topology.url}/upload -H 'Content-Type: text/plain' -H 'Content-Disposition: attachment; filename="f.txt"' \\
       -H 'X-Content-Range: bytes 0-4/5' -H 'Session-ID: demo1' --data-binary hello
Ctrl-C stops everything${keepDir ? ' (the directory is kept)' : ' and removes the directory'}.
`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stdout.write('\nstopping…\n');
  await topology.stop();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`topology: ${err && err.message ? err.message : err}\n`);
    process.exitCode = 1;
  },
);
