import { accessSync, constants, rmSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { tempDir } from './process';

/** Debian's launcher; `CHROMIUM_BIN` overrides it. playwright-core never downloads a browser here. */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

const INSTALL_HINT = 'install the Debian package: `apt-get install -y chromium` (.ci/run does), or set CHROMIUM_BIN to a Chromium binary';

/** Flags for a quiet, self-contained headless run (no sandbox: tests run as root in CI). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium executable, or a loud error (a missing browser fails the test, never skips it). */
export function chromiumExecutable(): string {
  const bin = process.env.CHROMIUM_BIN ?? DEFAULT_CHROMIUM;
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new Error(`Chromium not found or not executable at ${bin}: ${INSTALL_HINT}`);
  }
  return bin;
}

export interface HeadlessChromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile (a new temporary `--user-data-dir`). */
export async function launchChromium(options: { timeoutMs?: number } = {}): Promise<HeadlessChromium> {
  const executablePath = chromiumExecutable();
  const profile = tempDir('chromium-profile-');
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: options.timeoutMs ?? 15_000,
      viewport: { width: 900, height: 700 },
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`Chromium (${executablePath}) did not start: ${(err as Error).message}`);
  }
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
