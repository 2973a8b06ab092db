/**
 * What a resumable client does in front of several replicas (the native topology and the compose
 * deployment): send segments in parallel and re-send each until it is answered 201 or 200 (503 →
 * after Retry-After; 502/504 or a lost connection → soon), and the choreography of a replica
 * killed while segments stream to it.
 */
import { ConnectionLost, sendSegment, sleep, type ByteRange, type SimpleResponse } from './segments';

/** Adds context (the services' output) to a failure message. */
export type Explain = (message: string) => string | Promise<string>;

/** `total` bytes in segments of `size`. */
export function segmentsOf(total: number, size: number): ByteRange[] {
  const ranges: ByteRange[] = [];
  for (let start = 0; start < total; start += size) ranges.push({ start, end: Math.min(total, start + size) - 1 });
  return ranges;
}

/** Re-sends one segment until it is answered 201 or 200; every answer (a lost connection: status 0) goes to `log`. */
export async function sendUntilAnswered(port: number, file: Buffer, id: string, range: ByteRange, log: SimpleResponse[], deadline: number, explain: Explain): Promise<SimpleResponse> {
  for (;;) {
    let response: SimpleResponse | null = null;
    try {
      response = await sendSegment(port, id, file, range, { timeoutMs: 30_000 });
      log.push(response);
      if (response.status === 201 || response.status === 200) return response;
      if (![502, 503, 504].includes(response.status)) {
        throw new Error(await explain(`segment ${range.start}-${range.end}: unexpected ${response.status} ${response.body.toString('latin1')}`));
      }
    } catch (err) {
      if (!(err instanceof ConnectionLost)) throw err;
      log.push({ status: 0, headers: {}, body: Buffer.from(err.message) });
    }
    if (Date.now() > deadline) throw new Error(await explain(`segment ${range.start}-${range.end} not accepted in time`));
    await sleep(response?.status === 503 ? Number(response.headers['retry-after'] ?? 1) * 1000 : 200);
  }
}

/** Sends `ranges` with `concurrency` segments in flight, retrying each until answered (90 s at most). */
export async function uploadAll(port: number, file: Buffer, id: string, ranges: ByteRange[], concurrency: number, log: SimpleResponse[], explain: Explain): Promise<SimpleResponse[]> {
  const deadline = Date.now() + 90_000;
  const queue = [...ranges];
  const answers: SimpleResponse[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let range = queue.shift(); range; range = queue.shift()) answers.push(await sendUntilAnswered(port, file, id, range, log, deadline, explain));
    }),
  );
  return answers;
}

/**
 * Sends `ranges` all at once (round robin puts them on every replica), each paused after 256 KiB
 * of its body; once all are paused and nginx streams them on (`streaming()` true, at most 10 s;
 * without it, 200 ms), `kill()` runs (once) and the bodies are finished. Resolves with each
 * segment's answer (a lost connection: status 0), in the order of `ranges`.
 */
export async function sendWhileKilling(port: number, file: Buffer, id: string, ranges: ByteRange[], kill: () => Promise<void>, streaming?: () => Promise<boolean>): Promise<SimpleResponse[]> {
  let paused = 0;
  let killed: Promise<void> | null = null;
  const allPaused = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (paused === ranges.length) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  return Promise.all(
    ranges.map((range) =>
      sendSegment(port, id, file, range, {
        timeoutMs: 30_000,
        pauseAt: {
          bodyBytes: 256 * 1024,
          hook: async () => {
            paused++;
            await allPaused;
            killed ??= (async () => {
              // nginx retries a segment elsewhere while it has sent nothing to the dead replica:
              // wait until it streams to it (under load, 200 ms were not always enough).
              if (!streaming) await sleep(200);
              for (const deadline = Date.now() + 10_000; streaming && !(await streaming()) && Date.now() < deadline; ) await sleep(20);
              await kill();
            })();
            await killed;
          },
        },
      }).then(
        (response) => response,
        (err: unknown) => {
          if (err instanceof ConnectionLost) return { status: 0, headers: {}, body: Buffer.from(err.message) } as SimpleResponse;
          throw err;
        },
      ),
    ),
  );
}

export interface KillOptions {
  /** nginx's port. */
  port: number;
  file: Buffer;
  id: string;
  /** At least 8 segments. */
  ranges: ByteRange[];
  /** The replicas, as nginx's access log names them (`upstream=`). */
  replicas: string[];
  /** Every `upstream=` nginx logged so far. */
  upstreams(): Promise<string[]>;
  /** Kills one replica (SIGKILL) and resolves when it is dead. */
  kill(): Promise<void>;
  /** True while segments stream into the replica `kill()` takes down (e.g. its metrics); optional. */
  streaming?(): Promise<boolean>;
  explain: Explain;
}

/**
 * A replica killed mid-upload, the client carrying on: the first four segments until every
 * replica has answered some, the next four at once with `kill()` while their bodies are half
 * sent (throws unless some of them failed: they were on the killed replica), then the rest and
 * the failed ones again. Resolves with the answers of that last part.
 */
export async function uploadKillingAReplica(options: KillOptions): Promise<SimpleResponse[]> {
  const { port, file, id, ranges, explain } = options;
  const log: SimpleResponse[] = [];
  await spreadOverReplicas(options, log);

  const interrupted = await sendWhileKilling(port, file, id, ranges.slice(4, 8), options.kill, options.streaming);
  // The segments streaming to the dead replica failed (nginx answers 502, or the connection goes).
  if (interrupted.every((r) => r.status === 201)) throw new Error(await explain('no segment was in flight on the killed replica'));

  const rest = [...ranges.slice(8), ...ranges.slice(4, 8).filter((_, i) => interrupted[i].status !== 201)];
  return uploadAll(port, file, id, rest, 4, log, explain);
}

/**
 * A replica stopped gracefully mid-upload (SIGTERM): as `uploadKillingAReplica`, but `kill()`
 * only starts the stop (it resolves once the replica refuses new connections) and the four
 * segments streaming then must all be acknowledged (201), also those on the stopping replica.
 * Resolves with every answer after the stop (the held segments first).
 */
export async function uploadStoppingAReplica(options: KillOptions): Promise<SimpleResponse[]> {
  const { port, file, id, ranges, explain } = options;
  const log: SimpleResponse[] = [];
  await spreadOverReplicas(options, log);
  const held = await sendWhileKilling(port, file, id, ranges.slice(4, 8), options.kill, options.streaming);
  if (held.some((r) => r.status !== 201)) throw new Error(await explain(`segments in flight during the stop were answered ${held.map((r) => r.status).join(', ')}`));
  return [...held, ...(await uploadAll(port, file, id, ranges.slice(8), 4, log, explain))];
}

/** The first four segments, until every replica has answered some (so the next ones reach each). */
async function spreadOverReplicas(options: KillOptions, log: SimpleResponse[]): Promise<void> {
  const { port, file, id, ranges, explain } = options;
  // nginx may briefly route around a replica (max_fails=1 marks it down for fail_timeout after
  // one failed upstream connection, e.g. an idle keep-alive connection closed by the gateway), so
  // identical re-sends (harmless, D4) go out until every replica has answered some — bounded.
  const logBefore = (await options.upstreams()).length;
  let early = new Set<string>();
  for (let attempt = 0; attempt < 8; attempt++) {
    await uploadAll(port, file, id, ranges.slice(0, 4), 4, log, explain);
    early = new Set((await options.upstreams()).slice(logBefore));
    if (options.replicas.every((replica) => early.has(replica))) break;
    await sleep(1000);
  }
  const silent = options.replicas.filter((replica) => !early.has(replica));
  if (silent.length) throw new Error(await explain(`nginx sent no segment to ${silent.join(', ')} before the kill (upstreams: ${[...early].join(', ')})`));
}
