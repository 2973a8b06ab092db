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

signals (as nginx's): SIGTERM, SIGQUIT graceful stop (worker_shutdown_timeout); SIGINT stop at
  once; SIGHUP re-read the configuration (a bad file is refused, the running one stays);
  SIGUSR1 reopen the log files
`;

/** The configuration file, with `--listen` overriding its `listen`. */
function readConfig(file: string, listen: { host: string; port: number } | undefined): GatewayConfig {
  const config = loadConfigFile(file);
  return listen ? { ...config, listen } : config;
}

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


/** Runs the gateway until a stop signal (see `runUntilStopped`); resolves with an exit code. */
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
    config = configPath ? readConfig(configPath, listen) : embeddedDefaults({ listen });
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
  let gateway;
  try {
    gateway = createGateway(config);
    await gateway.listen();
  } catch (err) {
    process.stderr.write(`upload-gateway: ${(err as Error).message}\n`);
    return 1;
  }
  await runUntilStopped(gateway, configPath ? () => readConfig(configPath!, listen) : null);
  return 0;
}

/** The signals, as nginx's master process takes them. */
const STOPS = { SIGTERM: 'graceful', SIGQUIT: 'graceful', SIGINT: 'fast' } as const;

/**
 * Serves until stopped. `SIGTERM`/`SIGQUIT`: graceful stop (the requests in flight finish within
 * `worker_shutdown_timeout`); `SIGINT`, or a second stop signal: stop at once. `SIGHUP`: re-read
 * the configuration file and apply it without dropping a connection, or keep the one in effect
 * when the file is refused (as `nginx -s reload`). `SIGUSR1`: reopen the log files.
 */
async function runUntilStopped(gateway: import('./gateway').Gateway, reread: (() => GatewayConfig) | null): Promise<void> {
  const log = gateway.log;
  const reload = () => {
    if (!reread) return log.warn('SIGHUP: no configuration file to re-read (embedded defaults)');
    gateway.reload(reread).catch((err: Error) => log.error({ reason: err.message }, 'reload refused: the configuration in effect stays'));
  };
  const reopen = () => {
    gateway.reopenLogs();
    log.info('log files reopened');
  };
  const handlers: Array<[NodeJS.Signals, (signal: NodeJS.Signals) => void]> = [['SIGHUP', reload], ['SIGUSR1', reopen]];
  await new Promise<void>((resolve) => {
    let stopping: Promise<void> | null = null;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping || STOPS[signal as keyof typeof STOPS] === 'fast') {
        log.info({ signal }, 'stopping at once');
        void gateway.close().then(resolve, resolve);
        return;
      }
      log.info({ signal }, 'graceful stop');
      stopping = gateway.shutdown().then(resolve, (err: Error) => {
        log.error({ err: err.message }, 'graceful stop failed');
        resolve();
      });
    };
    for (const signal of Object.keys(STOPS) as Array<keyof typeof STOPS>) handlers.push([signal, stop]);
    for (const [signal, handler] of handlers) process.on(signal, handler);
  });
  // Only our own handlers go: an embedding program's stay.
  for (const [signal, handler] of handlers) process.off(signal, handler);
}
