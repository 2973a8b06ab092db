/**
 * Crash safety (issue item 5; D7, D8, D22, D23): `kill -9` of the REAL gateway process at any
 * moment, then a restart on the same port and directories. Every segment the client saw
 * acknowledged must still be reported and still be on disk, the client resumes with the status
 * query, and the file handed to the backend is byte-identical to the source.
 *
 * Needs the built gateway (`npm run build`; `npm test` does it in pretest).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CaptureBackend, type BackendCall } from './helpers/gateway';
import { freePort, startGateway, tempDir, type GatewayProcess } from './helpers/process';
import {
  ConnectionLost, addRange, coveredBytes, covers, formatRanges, parseRanges, prng, randomFile,
  sendSegment, sleep, statusQuery, type ByteRange, type SimpleResponse,
} from './helpers/segments';

const MiB = 1024 * 1024;
const T0 = Date.now();
const dbg = (...a: unknown[]) => { if (process.env.CRASH_DEBUG) process.stderr.write(`${Date.now() - T0} ${a.join(' ')}\n`); };

/** A gateway process on a fixed port and fixed directories that can be killed and restarted. */
class RestartableGateway {
  readonly store: string;
  readonly state: string;
  private process: GatewayProcess | null = null;
  private readonly outputs: string[] = [];
  kills = 0;

  private constructor(readonly dir: string, readonly port: number, readonly backend: CaptureBackend) {
    this.store = path.join(dir, 'store');
    this.state = path.join(dir, 'state');
  }

  static async create(prefix: string): Promise<RestartableGateway> {
    const backend = await new CaptureBackend().start();
    const gateway = new RestartableGateway(tempDir(prefix), await freePort(), backend);
    await gateway.start();
    return gateway;
  }

  private config(): string {
    return `listen 127.0.0.1:${this.port};
client_max_body_size 100m;

location /upload {
    upload_pass http://127.0.0.1:${this.backend.port};
    upload_resumable on;
    upload_store ${this.store} 1;
    upload_state_store ${this.state};
    upload_set_form_field name "$upload_file_name";
    upload_set_form_field path "$upload_tmp_path";
    upload_aggregate_form_field md5 "$upload_file_md5";
    upload_aggregate_form_field sha256 "$upload_file_sha256";
    upload_aggregate_form_field size "$upload_file_size";
    upload_cleanup 400 404 499 500-505;
    upload_completed_retention 60s;
}
`;
  }

  async start(): Promise<void> {
    this.process = await startGateway(this.config(), { port: this.port, dir: this.dir });
  }

  get running(): boolean {
    return this.process !== null;
  }

  /** SIGKILL: no shutdown code of the gateway runs. */
  async kill(): Promise<void> {
    const p = this.process!;
    this.process = null;
    const exited = p.kill();
    this.kills++;
    await exited;
    this.outputs.push(p.output());
  }

  async restart(): Promise<void> {
    await this.start();
  }

  /** Where the gateway keeps a session's bytes (`upload_store <dir> 1`: last character of the id). */
  dataPath(sessionId: string): string {
    return path.join(this.store, sessionId.slice(-1), sessionId);
  }

  log(): string {
    return [...this.outputs, this.process?.output() ?? ''].filter(Boolean).join('\n---- restart ----\n');
  }

  async close(): Promise<void> {
    if (this.process) {
      await this.process.stop();
      this.process = null;
    }
    await this.backend.stop();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
const field = (call: BackendCall, name: string) => call.fields.find(([n]) => n === name)?.[1];

function rangesOf(response: SimpleResponse): ByteRange[] {
  const text = response.headers['range'];
  return text ? parseRanges(text).ranges : [];
}

/** Checks the acknowledged bytes in the data file are the source bytes (the gateway must be dead or idle). */
async function expectBytesOnDisk(file: string, source: Buffer, ranges: readonly ByteRange[]): Promise<void> {
  const data = await fs.readFile(file);
  for (const r of ranges) {
    const ok = data.length > r.end && data.subarray(r.start, r.end + 1).equals(source.subarray(r.start, r.end + 1));
    if (!ok) throw new Error(`acknowledged bytes ${r.start}-${r.end} are not on disk as sent (file has ${data.length} bytes)`);
  }
}

function segmentsOf(size: number, segmentSize: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (let start = 0; start < size; start += segmentSize) out.push({ start, end: Math.min(size, start + segmentSize) - 1 });
  return out;
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

type KillMode = 'mid-body' | 'after-201' | 'random';

describe('crash safety: kill -9 of the real gateway process, restart, resume', () => {
  const gateways: RestartableGateway[] = [];
  afterAll(async () => {
    for (const g of gateways) await g.close().catch(() => undefined);
  });

  test('a 24 MiB upload survives repeated SIGKILLs (mid-body, right after a 201, at random) and arrives byte-identical, handed off once', async () => {
    const SIZE = 24 * MiB;
    const SEGMENT = 1 * MiB;
    const PARALLEL = 3;
    const SESSION = 'crash-many-1';
    const rand = prng(0xc0ffee);
    dbg('t1'); const source = randomFile(SIZE, 0x5eed); dbg('t2');
    const segments = segmentsOf(SIZE, SEGMENT);
    const deadline = Date.now() + 45_000;

    const gw = await RestartableGateway.create('crash-many-'); dbg('t3');
    gateways.push(gw);

    // ---- the client's view -------------------------------------------------------------
    /** Everything the client was told is received (201 Range headers, its own 201'd segments, status queries). */
    let acked: ByteRange[] = [];
    const stats = { segmentsSent: 0, acknowledged: 0, connectionErrors: 0, retryLater: 0, statusQueries: 0, rounds: 0 };
    let finalAnswer: SimpleResponse | null = null;
    let stopped = false;

    // Hooks the killer arms; the client fires them.
    let on201: (() => void) | null = null;
    let midBody: { claim: (range: ByteRange) => Promise<void> } | null = null;

    const acknowledge = (ranges: readonly ByteRange[]) => {
      for (const r of ranges) acked = addRange(acked, r);
    };
    const expectNoLoss = (reported: readonly ByteRange[], when: string) => {
      if (!covers(reported, acked)) {
        throw new Error(`${when}: acknowledged ${formatRanges(acked, SIZE)} but the gateway reports ${formatRanges(reported, SIZE) || '(nothing)'}\n${gw.log()}`);
      }
    };

    async function sendOne(range: ByteRange): Promise<void> {
      if (stopped) return;
      stats.segmentsSent++;
      let pauseAt;
      if (midBody) {
        const { claim } = midBody;
        midBody = null;
        pauseAt = { bodyBytes: (range.end - range.start + 1) >> 1, hook: () => claim(range) };
      }
      let response: SimpleResponse;
      try {
        response = await sendSegment(gw.port, SESSION, source, range, { pauseAt });
      } catch (err) {
        if (!(err instanceof ConnectionLost)) throw err;
        stats.connectionErrors++; dbg('lost', range.start / MiB, (err as Error).message);
        return;
      }
      if (response.status === 201) {
        // D23: a 201 means the segment and the session state are on disk.
        stats.acknowledged++; dbg('201', range.start / MiB);
        acknowledge([range, ...rangesOf(response)]);
        const fire = on201;
        on201 = null;
        fire?.();
      } else if (response.status === 503) {
        stats.retryLater++; // D4/D7: retry in a later round
      } else if (response.status === 200) {
        finalAnswer = response; // the backend's answer, relayed (or replayed, D7)
      } else {
        throw new Error(`segment ${range.start}-${range.end}: unexpected ${response.status} ${response.body.toString('latin1')}\n${gw.log()}`);
      }
    }

    async function client(): Promise<SimpleResponse> {
      for (let round = 0; round < 1000 && !stopped; round++) {
        if (Date.now() > deadline) throw new Error(`upload not finished in time; acknowledged ${formatRanges(acked, SIZE)}`);
        stats.rounds++; dbg('round');
        let status: SimpleResponse;
        try {
          status = await statusQuery(gw.port, SESSION);
        } catch (err) {
          if (!(err instanceof ConnectionLost)) throw err;
          stats.connectionErrors++;
          await sleep(25); // the gateway is down (being restarted)
          continue;
        }
        stats.statusQueries++;
        let received: ByteRange[] = [];
        if (status.status === 200) {
          expect(status.headers['x-upload-total']).toBe(String(SIZE));
          received = rangesOf(status);
        } else if (status.status !== 404) {
          throw new Error(`status query: unexpected ${status.status} ${status.body.toString('latin1')}`);
        }
        // 404 only while nothing was ever acknowledged; otherwise the session must still be there.
        expectNoLoss(received, `status query in round ${round}`);
        acknowledge(received);
        const missing = segments.filter((s) => !covers(received, [s]));
        // Everything is received but the answer was lost (killed during the hand-off, or before
        // the answer reached us): any segment again gets the backend's answer (a retried
        // hand-off, or the stored answer replayed).
        const toSend = missing.length > 0 ? missing : [segments[segments.length - 1]!];
        await pool(toSend, PARALLEL, sendOne);
        if (finalAnswer) return finalAnswer;
      }
      throw new Error(stopped ? 'client stopped (the killer failed)' : 'client gave up after 1000 rounds');
    }

    // ---- the killer --------------------------------------------------------------------
    // Kills are spread over the upload by progress (acknowledged bytes), the last one at most at
    // ~80 %, so each lands while segments are still missing. Between a kill and the restart the
    // data file is checked: every acknowledged byte is there, as sent.
    const plan: KillMode[] = ['mid-body', 'after-201', 'random', 'mid-body', 'random', 'after-201', 'random', 'after-201'];
    const done: Array<{ mode: KillMode; at: number; victim?: ByteRange }> = [];
    const skipped: KillMode[] = [];

    async function killer(): Promise<void> {
      for (let i = 0; i < plan.length && !stopped; i++) {
        const mode = plan[i]!;
        const threshold = SIZE * (0.04 + (0.72 * i) / plan.length + 0.03 * rand());
        while (coveredBytes(acked) < threshold && !stopped && Date.now() < deadline) await sleep(2);
        if (stopped || finalAnswer || Date.now() >= deadline) break;

        let victim: ByteRange | undefined;
        let releaseVictim: () => void = () => undefined;
        if (mode === 'random') {
          await sleep(Math.floor(rand() * 40));
        } else if (mode === 'after-201') {
          // The kill is issued in the same tick the client reads the 201.
          const fired = await Promise.race([
            new Promise<boolean>((resolve) => (on201 = () => resolve(true))),
            sleep(5000).then(() => false),
          ]);
          on201 = null;
          if (!fired) {
            skipped.push(mode);
            continue;
          }
        } else {
          // The next segment the client starts stops half-way through its body; the gateway is
          // killed while it waits for the rest (after it has written the first half to disk).
          const paused = await Promise.race([
            new Promise<ByteRange>((resolve) => {
              midBody = {
                claim: (range) => {
                  resolve(range);
                  return new Promise<void>((release) => (releaseVictim = release));
                },
              };
            }),
            sleep(5000).then(() => null),
          ]);
          midBody = null;
          if (!paused) {
            skipped.push(mode);
            continue;
          }
          victim = paused;
          const half = paused.start + ((paused.end - paused.start + 1) >> 1) - 1;
          const until = Date.now() + 2000;
          for (;;) {
            const data = await fs.readFile(gw.dataPath(SESSION)).catch(() => Buffer.alloc(0));
            if (data.length > half && data.subarray(paused.start, half + 1).equals(source.subarray(paused.start, half + 1))) break;
            if (Date.now() > until) break; // still a kill with the body in flight, just less of it written
            await sleep(5);
          }
        }
        if (finalAnswer) {
          releaseVictim();
          skipped.push(mode);
          break;
        }

        dbg('kill', mode, victim?.start); const before = acked;
        await gw.kill();
        releaseVictim();
        done.push({ mode, at: coveredBytes(before), victim });
        // Dead gateway: every byte acknowledged before the kill is in the data file as sent.
        await expectBytesOnDisk(gw.dataPath(SESSION), source, before);
        await gw.restart(); dbg('restarted');

        const status = await statusQuery(gw.port, SESSION);
        expect(status.status).toBe(200);
        const reported = rangesOf(status);
        expectNoLoss(reported, `after kill #${done.length} (${mode})`);
        if (victim) {
          // D8: the interrupted segment's bytes are not recorded (it was missing when sent).
          expect(covers(reported, [victim])).toBe(false);
        }
        await sleep(Math.floor(rand() * 30));
      }
    }

    const [clientResult, killerResult] = await Promise.allSettled([
      client().finally(() => (stopped = true)),
      killer().catch((err) => {
        stopped = true; // a broken invariant ends the client too
        throw err;
      }),
    ]);
    if (clientResult.status === 'rejected') throw clientResult.reason;
    if (killerResult.status === 'rejected') throw killerResult.reason;
    const answer = clientResult.value;

    // ---- what must hold at the end ---------------------------------------------------
    expect(gw.kills).toBeGreaterThanOrEqual(5);
    expect(done.filter((k) => k.mode === 'mid-body').length).toBeGreaterThanOrEqual(1);
    expect(done.filter((k) => k.mode === 'after-201').length).toBeGreaterThanOrEqual(1);
    expect(stats.connectionErrors).toBeGreaterThan(0);

    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toBe('backend 200\n');

    // D7: the hand-off happens exactly once. The one exception is a kill while the hand-off is in
    // flight (the backend got the form, the gateway died before storing the answer): the claim
    // of the dead process is then stale and the client's retry hands the upload off again. The
    // killer stops before the last segment, so at most one such kill can happen → ≤ 2 calls.
    const calls = gw.backend.calls;
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(calls.length).toBeLessThanOrEqual(2);
    for (const call of calls) {
      expect(call.method).toBe('POST');
      expect(field(call, 'name')).toBe('big.bin');
      expect(field(call, 'size')).toBe(String(SIZE));
      expect(field(call, 'sha256')).toBe(sha256(source));
      expect(field(call, 'md5')).toBe(md5(source));
      expect(field(call, 'path')).toBe(gw.dataPath(SESSION));
    }
    const handedOff = await fs.readFile(field(calls[0]!, 'path')!);
    expect(handedOff.length).toBe(SIZE);
    expect(sha256(handedOff)).toBe(sha256(source));

    // Status after completion: the whole file, state complete.
    const finalStatus = await statusQuery(gw.port, SESSION);
    expect(finalStatus.status).toBe(200);
    expect(finalStatus.headers['range']).toBe(`0-${SIZE - 1}/${SIZE}`);
    expect(finalStatus.headers['x-upload-state']).toBe('complete');

    // D7: a repeated final segment gets the stored answer, without a new hand-off…
    const last = segments[segments.length - 1]!;
    const replay = await sendSegment(gw.port, SESSION, source, last);
    expect(replay.status).toBe(answer.status);
    expect(replay.body.toString()).toBe(answer.body.toString());
    expect(replay.headers['x-capture-id']).toBe(answer.headers['x-capture-id']);
    expect(calls.length).toBeLessThanOrEqual(2);
    const callsAtEnd = calls.length;
    // …also after one more kill -9 (the completion record is durable too).
    await gw.kill();
    await gw.restart();
    const replayAfterKill = await sendSegment(gw.port, SESSION, source, last);
    expect(replayAfterKill.status).toBe(answer.status);
    expect(replayAfterKill.headers['x-capture-id']).toBe(answer.headers['x-capture-id']);
    expect(gw.backend.calls.length).toBe(callsAtEnd);
    expect(sha256(await fs.readFile(gw.dataPath(SESSION)))).toBe(sha256(source));

    // A summary in the test output (kills are the point of this test).
    process.stdout.write(
      `crash-safety: ${gw.kills} kills (${done.map((k) => `${k.mode}@${(k.at / MiB).toFixed(1)}MiB`).join(', ')})` +
        `${skipped.length ? `, skipped ${skipped.join(',')}` : ''}; ${stats.segmentsSent} segments sent, ` +
        `${stats.acknowledged} acknowledged, ${stats.connectionErrors} connection errors, ${stats.retryLater} retry-later, ` +
        `${stats.rounds} rounds; backend calls ${callsAtEnd}\n`,
    );
  }, 120_000);

  test('two acknowledged segments survive a kill -9 right after the second 201: status and bytes on disk', async () => {
    const SIZE = 4 * MiB;
    const SESSION = 'crash-two-2';
    const source = randomFile(SIZE, 0xbeef);
    const first = { start: 0, end: MiB - 1 };
    const second = { start: 2 * MiB, end: 3 * MiB - 1 };

    const gw = await RestartableGateway.create('crash-two-');
    gateways.push(gw);

    const a = await sendSegment(gw.port, SESSION, source, first);
    expect(a.status).toBe(201);
    expect(a.headers['range']).toBe(`0-${MiB - 1}/${SIZE}`);
    const b = await sendSegment(gw.port, SESSION, source, second);
    expect(b.status).toBe(201);
    await gw.kill(); // the very next thing after reading the 201
    expect(b.headers['range']).toBe(`0-${MiB - 1}/${SIZE},${2 * MiB}-${3 * MiB - 1}/${SIZE}`);

    await expectBytesOnDisk(gw.dataPath(SESSION), source, [first, second]);
    await gw.restart();

    const status = await statusQuery(gw.port, SESSION);
    expect(status.status).toBe(200);
    expect(status.headers['range']).toBe(`0-${MiB - 1}/${SIZE},${2 * MiB}-${3 * MiB - 1}/${SIZE}`);
    expect(status.body.toString('latin1')).toBe(status.headers['range']);
    expect(status.headers['x-upload-total']).toBe(String(SIZE));
    expect(status.headers['x-upload-state']).toBe('incomplete');
    await expectBytesOnDisk(gw.dataPath(SESSION), source, [first, second]);

    // The session continues where it was: the missing segments complete it, one hand-off.
    expect((await sendSegment(gw.port, SESSION, source, { start: MiB, end: 2 * MiB - 1 })).status).toBe(201);
    const done = await sendSegment(gw.port, SESSION, source, { start: 3 * MiB, end: SIZE - 1 });
    expect(done.status).toBe(200);
    expect(gw.backend.calls.length).toBe(1);
    expect(field(gw.backend.calls[0]!, 'sha256')).toBe(sha256(source));
    expect(sha256(await fs.readFile(gw.dataPath(SESSION)))).toBe(sha256(source));
  }, 60_000);

  test('a kill -9 during the hand-off: the retry hands off again (the one D7 exception), then the answer is replayed', async () => {
    const SEGMENT = 64 * 1024;
    const SIZE = 3 * SEGMENT;
    const SESSION = 'crash-handoff-3';
    const source = randomFile(SIZE, 0xfeed);
    const segments = segmentsOf(SIZE, SEGMENT);

    const gw = await RestartableGateway.create('crash-handoff-');
    gateways.push(gw);
    gw.backend.delayMs = 3000; // hold the first hand-off open (the kill comes long before)

    expect((await sendSegment(gw.port, SESSION, source, segments[0]!)).status).toBe(201);
    expect((await sendSegment(gw.port, SESSION, source, segments[1]!)).status).toBe(201);
    const completing = sendSegment(gw.port, SESSION, source, segments[2]!).catch((err) => err);
    const until = Date.now() + 10_000;
    while (gw.backend.calls.length === 0 && Date.now() < until) await sleep(5);
    expect(gw.backend.calls.length).toBe(1); // the backend has the form; its answer is pending
    await gw.kill();
    expect(await completing).toBeInstanceOf(ConnectionLost);
    gw.backend.delayMs = 0;
    await gw.restart();

    // Everything is received; the hand-off claim belongs to a dead process.
    const status = await statusQuery(gw.port, SESSION);
    expect(status.status).toBe(200);
    expect(status.headers['range']).toBe(`0-${SIZE - 1}/${SIZE}`);
    expect(status.headers['x-upload-state']).not.toBe('complete');

    // The client retries the last segment: handed off again (second and last call)…
    const retried = await sendSegment(gw.port, SESSION, source, segments[2]!);
    expect(retried.status).toBe(200);
    expect(gw.backend.calls.length).toBe(2);
    expect(retried.headers['x-capture-id']).toBe('2');
    for (const call of gw.backend.calls) {
      expect(field(call, 'sha256')).toBe(sha256(source));
      expect(field(call, 'size')).toBe(String(SIZE));
    }
    // …and from now on the stored answer is replayed, also for any other segment.
    for (const seg of [segments[2]!, segments[0]!]) {
      const replay = await sendSegment(gw.port, SESSION, source, seg);
      expect(replay.status).toBe(200);
      expect(replay.headers['x-capture-id']).toBe('2');
    }
    expect(gw.backend.calls.length).toBe(2);
    const after = await statusQuery(gw.port, SESSION);
    expect(after.headers['x-upload-state']).toBe('complete');
  }, 60_000);
});
