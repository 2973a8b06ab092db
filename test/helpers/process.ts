import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const SHARED_DIR = path.resolve(REPO_ROOT, '../shared');

/** A new temporary directory, inside the run's own (test/support/temp-root.js) under jest. */
export function tempDir(prefix = 'upload-gateway-'): string {
  return mkdtempSync(path.join(process.env.UPLOAD_GATEWAY_TEST_TMP ?? os.tmpdir(), prefix));
}

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 15000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, host, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A running child process that accepts connections on `port`. */
export interface ServiceProcess {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  output(): string;
  /** SIGINT (the gateway stops at once; SIGTERM would be its graceful stop) and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit (a crashed instance). */
  kill(): Promise<void>;
}

/** The real gateway binary, as a process. */
export type GatewayProcess = ServiceProcess;

/** Starts a process and waits until it accepts connections on `port` (fails with its output if it exits first). */
export async function startService(name: string, bin: string, args: string[], options: { port: number; cwd: string; env?: NodeJS.ProcessEnv }): Promise<ServiceProcess> {
  const child = spawn(bin, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`${name}: cannot run ${bin}: ${err.message}`)));
    void exited.then(() => reject(new Error(`${name} exited during start-up (code ${child.exitCode}, signal ${child.signalCode}):\n${output}`)));
  });
  failed.catch(() => undefined);
  try {
    await Promise.race([waitForPort(options.port, 15_000), failed]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const stopWith = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    name, port: options.port, url: `http://127.0.0.1:${options.port}`, child,
    output: () => output,
    stop: () => stopWith('SIGINT'),
    kill: () => stopWith('SIGKILL'),
  };
}

/** Starts the real gateway binary (built `dist/`) with a config file. */
export async function startGateway(configText: string, options: { port: number; dir?: string; env?: NodeJS.ProcessEnv }): Promise<GatewayProcess> {
  const dir = options.dir ?? tempDir();
  const configFile = path.join(dir, `gateway-${options.port}.conf`);
  writeFileSync(configFile, configText);
  return startService('gateway', process.execPath, [path.join(REPO_ROOT, 'bin/upload-gateway.js'), '--config', configFile], {
    port: options.port,
    cwd: dir,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', ...options.env },
  });
}

/**
 * An external program the tests need: `$envVar`, else `name` on PATH, else the given fallbacks
 * (e.g. /usr/sbin, not on a non-root PATH). Throws with the install hint if none is executable.
 */
export function findProgram(name: string, envVar: string, fallbacks: string[], installHint: string): string {
  const fromEnv = process.env[envVar];
  const candidates = fromEnv ? [fromEnv] : [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, name)), ...fallbacks];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(`${name} not found (looked for ${candidates.join(', ')}): ${installHint}`);
}

/** Runs a command to completion, collecting its output. */
export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The output of a finished `run`; throws with it unless the command exited 0. */
export async function succeeded(what: string, result: Promise<{ code: number | null; output: string }>): Promise<string> {
  const { code, output } = await result;
  if (code !== 0) throw new Error(`${what} failed (${code}):\n${output.slice(-6000)}`);
  return output;
}
