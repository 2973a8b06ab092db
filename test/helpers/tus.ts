/**
 * Helpers for the tus and IETF-draft tests: a test gateway with `upload_tus on;`, raw requests to
 * it, and what the backend received.
 */
import { createHash } from 'node:crypto';
import { handedOff, relayConnection } from '../client/helpers';
import { DEFAULT_LOCATION, httpRequest, rawRequest, startTestGateway, type BackendCall, type RawResponse, type TestGateway } from './gateway';

export const TUS = ['Tus-Resumable', '1.0.0'] as const;

/** A test gateway whose /upload location also speaks tus and the draft (`extra` goes into the location). */
export function startTusGateway(extra = '', options: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  return startTestGateway({ ...options, locationBody: `${options.locationBody ?? DEFAULT_LOCATION}\n    upload_tus on;\n${extra}` });
}

/** One raw request on its own connection. */
export function request(gw: TestGateway, method: string, target: string, headers: Array<[string, string]>, body?: Buffer | string): Promise<RawResponse> {
  return rawRequest(gw.port, httpRequest(method, target, headers, body), { idleMs: 5000 });
}

/** `Upload-Metadata` for a file name (and type). */
export function metadata(name: string, type = 'application/octet-stream'): string {
  return `filename ${Buffer.from(name).toString('base64')},filetype ${Buffer.from(type).toString('base64')}`;
}

/** The digests the module's generated form reports for `data`. */
export function digestsOf(data: Buffer): Record<'md5' | 'sha1' | 'sha256', string> {
  const hex = (name: string) => createHash(name).update(data).digest('hex');
  return { md5: hex('md5'), sha1: hex('sha1'), sha256: hex('sha256') };
}

/** `Upload-Checksum` of `data`. */
export function checksum(algorithm: 'md5' | 'sha1' | 'sha256', data: Buffer): string {
  return `${algorithm} ${createHash(algorithm).update(data).digest('base64')}`;
}

/** The hand-offs of the file named `name`, and the bytes at the path the form gives. */
export function handOffsOf(gw: TestGateway, name: string): { calls: BackendCall[]; data: Buffer | null } {
  return handedOff(gw.backend, name);
}

/** Checks the backend got the file named `name` exactly once, byte for byte, with the module's generated fields of it. */
export function expectHandedOffOnce(gw: TestGateway, name: string, data: Buffer): BackendCall {
  const { calls, data: stored } = handOffsOf(gw, name);
  expect(calls).toHaveLength(1);
  expect(stored?.equals(data)).toBe(true);
  const call = calls[0]!;
  const digests = digestsOf(data);
  expect(gw.backend.field(call, 'size')).toBe(String(data.length));
  expect(gw.backend.field(call, 'md5')).toBe(digests.md5);
  expect(gw.backend.field(call, 'sha1')).toBe(digests.sha1);
  expect(gw.backend.field(call, 'sha256')).toBe(digests.sha256);
  expect(gw.backend.field(call, 'number')).toBe('1');
  return call;
}

/**
 * A TCP relay in front of the gateway that cuts connections: each connection that has carried
 * more than `cutAfter` bytes towards the gateway is cut (both sides) while `cuts` remain. Counts
 * the bytes it passed towards the gateway.
 */
export class CuttingRelay {
  upBytes = 0;
  cutsDone = 0;
  port = 0;
  private server!: import('node:net').Server;
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(private readonly targetPort: number, private readonly cutAfter: number, private cuts = 1) {}

  async start(): Promise<this> {
    const net = await import('node:net');
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      let up = 0;
      relayConnection(client, upstream, this.sockets, {
        up: (d) => {
          up += d.length;
          if (this.cuts > 0 && up > this.cutAfter) {
            this.cuts--;
            this.cutsDone++;
            client.resetAndDestroy();
            upstream.destroy();
            return false;
          }
          this.upBytes += d.length;
          return true;
        },
        down: () => true,
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as import('node:net').AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
