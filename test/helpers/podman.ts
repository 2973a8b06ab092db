/**
 * Containers without Docker, for the compose test: Debian's podman serving the Docker API on a
 * socket of its own (`podman system service`), which Debian's docker-compose 1.29 drives through
 * DOCKER_HOST. Its configuration is a containers.conf of its own (CONTAINERS_CONF, so nothing
 * system-wide changes): no default rlimits (without CAP_SYS_RESOURCE the runtime may not set
 * them) and runc (crun refuses a hybrid cgroup layout). podman runs healthchecks from systemd
 * timers; without systemd a container's health stays `starting`, so `runHealthchecks` runs them.
 * Rootful: the test runs as root (as CI does).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { findProgram, run, succeeded, tempDir } from './process';
import { sleep } from './segments';

export const CONTAINER_TOOLS_HINT =
  'install the Debian packages: `apt-get install -y --no-install-recommends podman runc netavark aardvark-dns iptables iproute2 debootstrap ca-certificates docker-compose` (.ci/run does)';

const CONTAINERS_CONF = `# Written by the compose test (test/helpers/podman.ts), used through CONTAINERS_CONF only.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
`;

/** The programs the compose test needs; throws with the install hint for the first one missing. */
export function findContainerTools(): { podman: string; dockerCompose: string; debootstrap: string; ip: string } {
  const hint = CONTAINER_TOOLS_HINT;
  const tools = {
    podman: findProgram('podman', 'PODMAN_BIN', [], hint),
    dockerCompose: findProgram('docker-compose', 'DOCKER_COMPOSE_BIN', [], hint),
    debootstrap: findProgram('debootstrap', 'DEBOOTSTRAP_BIN', ['/usr/sbin/debootstrap'], hint),
    ip: findProgram('ip', 'IP_BIN', ['/usr/sbin/ip', '/sbin/ip'], hint),
  };
  // What podman runs: the runtime the configuration names, the network stack and its DNS (the
  // services find each other by name), iptables for the published port.
  findProgram('runc', 'RUNC_BIN', ['/usr/sbin/runc'], hint);
  findProgram('netavark', 'NETAVARK_BIN', ['/usr/lib/podman/netavark', '/usr/libexec/podman/netavark'], hint);
  findProgram('aardvark-dns', 'AARDVARK_DNS_BIN', ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'], hint);
  findProgram('iptables', 'IPTABLES_BIN', ['/usr/sbin/iptables', '/sbin/iptables'], hint);
  if (process.getuid?.() !== 0) throw new Error('the compose test runs rootful podman and debootstrap: run it as root (CI does)');
  return tools;
}

export interface Podman {
  /** The programs (findContainerTools). */
  tools: ReturnType<typeof findContainerTools>;
  /** CONTAINERS_CONF and DOCKER_HOST, for podman and docker-compose. */
  env: NodeJS.ProcessEnv;
  /** Runs podman with this configuration. */
  run(args: string[], timeoutMs?: number): Promise<{ code: number | null; output: string }>;
  /** Runs podman; its output, or an error with the output unless it exits 0. */
  check(args: string[], timeoutMs?: number): Promise<string>;
  /** Runs docker-compose against this podman. */
  compose(args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<{ code: number | null; output: string }>;
  /** Stops the API service and removes its directory (containers, images and volumes stay). */
  stop(): Promise<void>;
}

/** GET /_ping on the socket answers OK. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ socketPath, path: '/_ping', timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

/** Starts `podman system service` on a socket in a new temporary directory; resolves once it answers. */
export async function startPodman(): Promise<Podman> {
  const tools = findContainerTools();
  const dir = tempDir('podman-');
  const conf = path.join(dir, 'containers.conf');
  writeFileSync(conf, CONTAINERS_CONF);
  const socket = path.join(dir, 'podman.sock');
  const env = { CONTAINERS_CONF: conf, DOCKER_HOST: `unix://${socket}` };

  const service = spawn(tools.podman, ['system', 'service', '--time=0', `unix://${socket}`], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  service.stdout!.on('data', (d) => (output += d));
  service.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => service.once('exit', () => resolve()));
  service.once('error', (err) => (output += `cannot run ${tools.podman}: ${err.message}\n`));
  const stop = async () => {
    if (service.exitCode === null && service.signalCode === null) {
      const killer = setTimeout(() => service.kill('SIGKILL'), 10_000);
      service.kill('SIGTERM');
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while (!(await ping(socket))) {
    if (service.exitCode !== null || service.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`podman system service did not answer on ${socket}:\n${output}`);
    }
    await sleep(100);
  }

  const podman: Podman = {
    tools,
    env,
    run: (args, timeoutMs = 120_000) => run(tools.podman, args, { env, timeoutMs }),
    check: (args, timeoutMs) => succeeded(`podman ${args.join(' ')}`, podman.run(args, timeoutMs)),
    compose: (args, extraEnv = {}, timeoutMs = 120_000) =>
      // The API's image build (podman's), not a `docker` CLI or BuildKit.
      run(tools.dockerCompose, args, { env: { ...env, COMPOSE_DOCKER_CLI_BUILD: '0', DOCKER_BUILDKIT: '0', ...extraEnv }, timeoutMs }),
    stop,
  };
  return podman;
}

/**
 * Runs `podman healthcheck run` every `everyMs` for each container of the compose project that has
 * a healthcheck (its status shows one: `(starting)`, `(healthy)`, `(unhealthy)`), as the systemd
 * timers podman would otherwise use. `stop()` ends the loop.
 */
export function runHealthchecks(podman: Podman, project: string, everyMs = 2000): { stop(): Promise<void> } {
  return repeatUntilStopped(everyMs, async () => {
    const listed = await podman.run(['ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Names}}\t{{.Status}}']);
    const names = listed.output.split('\n').filter((line) => /\((starting|healthy|unhealthy)\)/.test(line)).map((line) => line.split('\t')[0]);
    await Promise.all(names.map((name) => podman.run(['healthcheck', 'run', name], 30_000)));
  });
}

/** Runs `task` again `everyMs` after each run, until `stop()`, which waits for the run under way and throws what a run threw. */
function repeatUntilStopped(everyMs: number, task: () => Promise<void>): { stop(): Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await task();
      for (let waited = 0; waited < everyMs && !stopped; waited += 50) await sleep(Math.min(50, everyMs));
    }
  })();
  loop.catch(() => undefined); // reported by stop()
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/**
 * netavark 1.4 (Debian 12) leaves a bridge's MAC address to the kernel, which moves it to the
 * lowest of its ports' as containers join. A container that already knew the old one (it had
 * asked the bridge's address, its DNS server, for a name) then loses DNS and everything beyond
 * the bridge until its ARP entry expires: 30-40 s, in which a gateway cannot resolve `backend`
 * (containers/netavark#833, fixed in later netavark). An address set by hand stays, so each new
 * podman bridge gets its own address set again the moment it appears (while `up` runs).
 */
export function pinNewBridgeAddresses(podman: Podman): { stop(): Promise<void> } {
  const seen = new Set(readdirSync('/sys/class/net'));
  return repeatUntilStopped(50, async () => {
    for (const name of readdirSync('/sys/class/net')) {
      if (seen.has(name) || !name.startsWith('podman') || !existsSync(`/sys/class/net/${name}/bridge`)) continue;
      seen.add(name);
      const device = `/sys/class/net/${name}`;
      const address = existsSync(device) ? readFileSync(`${device}/address`, 'utf8').trim() : null;
      const result = address && (await run(podman.tools.ip, ['link', 'set', 'dev', name, 'address', address]));
      // A bridge gone meanwhile (a build step's) needs nothing.
      if (result && result.code !== 0 && existsSync(device)) throw new Error(`ip link set dev ${name} address ${address} failed (${result.code}):\n${result.output}`);
    }
  });
}
