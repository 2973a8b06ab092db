/**
 * The registry images docker/ names, made from Debian packages (no container registry is
 * reachable from our machines; the Debian and npm registries are): a Debian trixie base made with
 * `debootstrap --variant=minbase` from the Debian mirror of the machine's apt sources and `podman
 * import`ed, and on it a stand-in for each image, built from test/compose/images/<name>/ and tagged
 * with the name docker/Dockerfile or docker/docker-compose.yml uses, so those files run unchanged.
 *
 * Cached: the base's tag and each stand-in's label carry a hash of their inputs (the debootstrap
 * arguments; the recipe's files, the base and the machine's CA bundle), and an image is made again
 * only when they change. An image of that name that is no stand-in (the real one, pulled where a
 * registry is reachable) is used as it is.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, run, succeeded, tempDir } from './process';
import type { Podman } from './podman';
import { COMPOSE_FILE } from './topology';

/** Debian 13: nodejs 20 (as the Dockerfile's node:20), nginx 1.26, redis 8, prometheus 2.53. */
const SUITE = 'trixie';
const RECIPES = path.join(REPO_ROOT, 'test/compose/images');
const DOCKERFILE = path.join(REPO_ROOT, 'docker/Dockerfile');
/** Debian's bundle of the CAs the machine trusts (package ca-certificates), copied into the build context. */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const LABEL = 'upload-gateway.stand-in';

/** Each registry image docker/ names, and the directory of its stand-in's recipe. */
export const STAND_INS: ReadonlyArray<{ image: string; recipe: string }> = [
  { image: 'node:20-bookworm-slim', recipe: 'node' },
  { image: 'nginx:1.27', recipe: 'nginx' },
  { image: 'redis:7', recipe: 'redis' },
  { image: 'prom/prometheus:v2.53.3', recipe: 'prometheus' },
];

function sha256(...parts: Array<string | Buffer>): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(createHash('sha256').update(part).digest());
  return hash.digest('hex');
}

/**
 * The registry images docker/ names: the Dockerfile's `FROM`s (not its own stages) and the
 * `image:`s of the services that do not build theirs (from `docker-compose config`, which resolves
 * the file's anchors and prints each service's keys sorted, two spaces in).
 */
export async function registryImages(podman: Podman): Promise<string[]> {
  const dockerfile = readFileSync(DOCKERFILE, 'utf8');
  const stages = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]);
  const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gim)].map((m) => m[1]).filter((image) => !stages.includes(image));
  const config = `\n${await succeeded('docker-compose config', podman.compose(['-f', COMPOSE_FILE, 'config']))}`;
  const services = config.slice(config.indexOf('\nservices:\n'), config.indexOf('\nvolumes:\n'));
  const pulled = services
    .split(/^ {2}(?=\S)/m)
    .filter((block) => !/^ {4}build:/m.test(block))
    .flatMap((block) => /^ {4}image: (\S+)$/m.exec(block)?.[1] ?? []);
  return [...new Set([...froms, ...pulled])].sort();
}

/**
 * The Debian mirror of the machine's apt sources (`DEBIAN_MIRROR` overrides): the first `deb`
 * source of the machine's own release with the `main` component, in /etc/apt/sources.list,
 * sources.list.d/*.list (one-line) or sources.list.d/*.sources (deb822).
 */
export function debianMirror(): string {
  if (process.env.DEBIAN_MIRROR) return process.env.DEBIAN_MIRROR;
  const release = /^VERSION_CODENAME=(\S+)/m.exec(existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '')?.[1];
  const dir = '/etc/apt/sources.list.d';
  const files = ['/etc/apt/sources.list', ...(existsSync(dir) ? readdirSync(dir).sort().map((name) => path.join(dir, name)) : [])];
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => (new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza.replace(/^#.*$/gm, ''))?.[1] ?? '').trim().split(/\s+/);
        if (field('Enabled')[0]?.toLowerCase() === 'no') continue;
        if (field('Types').includes('deb') && field('Suites').includes(release ?? '') && field('Components').includes('main')) return field('URIs')[0];
      }
    } else if (file.endsWith('.list') || file === '/etc/apt/sources.list') {
      for (const line of text.split('\n')) {
        const words = line.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/);
        if (words[0] === 'deb' && words[2] === release && words.slice(3).includes('main')) return words[1];
      }
    }
  }
  throw new Error(`no Debian mirror for ${release ?? '(unknown release)'} main in /etc/apt/sources.list{,.d}: set DEBIAN_MIRROR, e.g. http://deb.debian.org/debian`);
}

/** Made or found in the cache, with how long it took. */
export interface ImageReport {
  image: string;
  how: 'made' | 'cached' | 'not a stand-in, used as it is';
  seconds: number;
}

/** The Debian base: `localhost/upload-gateway-debian:trixie-<hash>`, made unless cached. */
async function debianBase(podman: Podman, reports: ImageReport[]): Promise<string> {
  const started = Date.now();
  const mirror = debianMirror();
  const debootstrap = ['--variant=minbase', SUITE];
  const tag = `localhost/upload-gateway-debian:${SUITE}-${sha256(...debootstrap, mirror).slice(0, 12)}`;
  if ((await podman.run(['image', 'exists', tag])).code !== 0) {
    const dir = tempDir('debian-base-');
    try {
      const rootfs = path.join(dir, 'rootfs');
      await succeeded(`debootstrap ${SUITE} from ${mirror}`, run(podman.tools.debootstrap, [...debootstrap, rootfs, mirror], { timeoutMs: 900_000 }));
      // The downloaded packages and indexes: stand-ins run apt-get update themselves.
      for (const cache of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
        for (const entry of readdirSync(path.join(rootfs, cache))) if (entry !== 'partial' && entry !== 'lock') rmSync(path.join(rootfs, cache, entry), { recursive: true, force: true });
      }
      const tarball = path.join(dir, 'rootfs.tar');
      await succeeded('tar of the base', run('tar', ['-C', rootfs, '-cf', tarball, '.'], { timeoutMs: 300_000 }));
      await podman.check(['import', '--change', 'CMD ["bash"]', tarball, tag], 300_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    reports.push({ image: tag, how: 'made', seconds: (Date.now() - started) / 1000 });
  } else reports.push({ image: tag, how: 'cached', seconds: (Date.now() - started) / 1000 });
  return tag;
}

/**
 * Makes (or finds cached) every stand-in docker/ needs. Throws when docker/ names an image that
 * has no stand-in here (it could only come from a registry).
 */
export async function makeStandInImages(podman: Podman): Promise<ImageReport[]> {
  const missing = (await registryImages(podman)).filter((image) => !STAND_INS.some((s) => s.image === image));
  if (missing.length) throw new Error(`docker/ names ${missing.join(', ')}, which no stand-in in test/helpers/stand-in-images.ts makes (add a recipe under test/compose/images/)`);
  if (!existsSync(HOST_CA_BUNDLE)) throw new Error(`${HOST_CA_BUNDLE} is missing: install the Debian package ca-certificates`);
  const reports: ImageReport[] = [];
  const base = await debianBase(podman, reports);
  for (const { image, recipe } of STAND_INS) {
    const started = Date.now();
    // Docker Hub's official images are `library/…`, the others (prom/…) under their own name.
    const name = `docker.io/${image.includes('/') ? image : `library/${image}`}`;
    const recipeDir = path.join(RECIPES, recipe);
    const files = readdirSync(recipeDir).sort();
    const caBundle = readFileSync(HOST_CA_BUNDLE);
    const hash = sha256(base, caBundle, ...files.flatMap((file) => [file, readFileSync(path.join(recipeDir, file))]));
    const found = await podman.run(['image', 'inspect', '--format', `{{index .Labels "${LABEL}"}}`, name]);
    const label = found.output.trim();
    let how: ImageReport['how'] = 'cached';
    if (found.code === 0 && (label === '' || label === '<no value>')) how = 'not a stand-in, used as it is';
    else if (found.code !== 0 || label !== hash) {
      const context = tempDir(`stand-in-${recipe}-`);
      try {
        for (const file of files) copyFileSync(path.join(recipeDir, file), path.join(context, file));
        copyFileSync(HOST_CA_BUNDLE, path.join(context, 'host-ca-certificates.crt'));
        await podman.check(['build', '--build-arg', `BASE=${base}`, '--label', `${LABEL}=${hash}`, '-t', name, '-f', path.join(context, 'Containerfile'), context], 900_000);
      } finally {
        rmSync(context, { recursive: true, force: true });
      }
      how = 'made';
    }
    reports.push({ image: name, how, seconds: (Date.now() - started) / 1000 });
  }
  return reports;
}
