import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseListen } from './config/values';
import { loadConfigFile } from './config/parse';
import { embeddedDefaults } from './config/defaults';
import { ConfigError } from './config/parse';
import type { GatewayConfig } from './config/types';

const USAGE = `usage: upload-gateway [--config FILE] [--listen [ADDR:]PORT] [--test]
       upload-gateway upload FILE [--url URL] [--segment 8MiB] [--concurrency 4] [...]
       upload-gateway sample-backend --listen [ADDR:]PORT --files DIR --store DIR
       upload-gateway healthcheck URL

  --config FILE   nginx-style configuration (upload_* directives of nginx_upload_module);
                  without it, embedded defaults serve /upload on 127.0.0.1:8080 with a
                  sample backend and everything stored under ./data
  --listen        override the listen address
  --test          check the configuration and exit (like nginx -t)

  upload          the resumable command-line client (see upload-gateway upload --help)
  healthcheck     exit 0 when GET URL answers 200 (for container healthchecks)
`;

/** `upload-gateway upload …`: the client's command, bundled with the client into dist/client/cli.cjs. */
async function uploadCommand(argv: string[]): Promise<number> {
  const bundle = path.join(__dirname, 'client', 'cli.cjs');
  if (!existsSync(bundle)) {
    process.stderr.write(`upload-gateway: the client is not built (${bundle} is missing): run npm run build\n`);
    return 1;
  }
  const cli = require(bundle) as { main(argv: string[]): Promise<number> };
  return cli.main(argv);
}


/** Runs the gateway until SIGINT/SIGTERM; resolves with an exit code for errors. */
export async function main(argv: string[]): Promise<number | undefined> {
  if (argv[0] === 'upload') return uploadCommand(argv.slice(1));
  // `upload-gateway sample-backend …`: the built-in sample backend as its own service (docker/).
  if (argv[0] === 'sample-backend') return (await import('./sample-backend')).sampleBackendMain(argv.slice(1));
  if (argv[0] === 'healthcheck') return (await import('./healthcheck')).healthcheckMain(argv.slice(1));
  let configPath: string | undefined;
  let listen: { host: string; port: number } | undefined;
  let testOnly: boolean;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        listen: { type: 'string' },
        test: { type: 'boolean', short: 't', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    configPath = values.config;
    testOnly = values.test;
    // A bare port listens on loopback only: the embedded defaults must not be exposed by accident.
    if (values.listen !== undefined) listen = parseListen(values.listen, '127.0.0.1');
  } catch (err) {
    process.stderr.write(`upload-gateway: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }

  let config: GatewayConfig;
  try {
    config = configPath ? loadConfigFile(configPath) : embeddedDefaults({ listen });
    if (configPath && listen) config = { ...config, listen };
  } catch (err) {
    process.stderr.write(`upload-gateway: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return 1;
  }
  if (testOnly) {
    process.stdout.write(`upload-gateway: configuration ${config.source} is ok\n`);
    return 0;
  }

  // Loaded here, not at the top: the subcommands above (a healthcheck every few seconds) start
  // without the server's dependencies.
  const { createGateway } = await import('./gateway');
  const gateway = createGateway(config);
  try {
    await gateway.listen();
  } catch (err) {
    process.stderr.write(`upload-gateway: ${(err as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await gateway.close();
  return 0;
}
