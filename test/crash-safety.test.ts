/**
 * Crash safety (issue item 5; D7, D8, D22, D23): `kill -9` of the REAL gateway process at any
 * moment, then a restart on the same port and directories. Every segment the client saw
 * acknowledged must still be reported and still be on disk, the client resumes with the status
 * query, and the file handed to the backend is byte-identical to the source.
 *
 * Needs the built gateway (`npm run build`; `npm test` does it in pretest).
 */
import { createHash } from 'node:crypto';
import { promises as fs, readdirSync, watch } from 'node:fs';
import * as path from 'node:path';
import { missingRanges } from '../src/protocol/range-set';
import { CaptureBackend, type BackendCall } from './helpers/gateway';
import { freePort, startGateway, tempDir, type GatewayProcess } from './helpers/process';
import { segmentsOf } from './helpers/retrying-upload';
import {
  ConnectionLost, addRange, coveredBytes, covers, formatRanges, parseRanges, prng, randomFile, readAt,
  sendSegment, sleep, statusQuery, withTimeout, type ByteRange, type SimpleResponse,
} from './helpers/segments';

const MiB = 1024 * 1024;

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

  /** Starts the binary (again) on the same port, store and state directories. */
  async start(): Promise<void> {
    this.process = await startGateway(this.config(), { port: this.port, dir: this.dir });
  }

  /** SIGKILL: no shutdown code of the gateway runs. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const p = this.process!;
    this.process = null;
    this.kills++;
    await p.kill();
    this.outputs.push(p.output());
  }

  /** Where the gateway keeps a session's bytes (`upload_store <dir> 1`: last character of the id). */
  dataPath(sessionId: string): string {
    return path.join(this.store, sessionId.slice(-1), sessionId);
  }

  /** Everything the gateway processes wrote (for failure messages). */
  log(): string {
    return [...this.outputs, this.process?.output() ?? ''].filter(Boolean).join('\n---- restart ----\n');
  }

  async close(): Promise<void> {
    if (this.process) await this.process.stop();
    this.process = null;
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

/** The acknowledged ranges of the data file hold the source bytes (the gateway must be dead or idle). */
async function expectBytesOnDisk(file: string, source: Buffer, ranges: readonly ByteRange[]): Promise<void> {
  if (ranges.length === 0) return;
  const data = await fs.readFile(file);
  for (const r of ranges) {
    const ok = data.length > r.end && data.subarray(r.start, r.end + 1).equals(source.subarray(r.start, r.end + 1));
    if (!ok) throw new Error(`acknowledged bytes ${r.start}-${r.end} are not on disk as sent (the file has ${data.length} bytes)`);
  }
}

/** Status query that tolerates a gateway still warming up (bounded). */
async function statusOf(port: number, sessionId: string): Promise<SimpleResponse> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statusQuery(port, sessionId);
    } catch (err) {
      if (!(err instanceof ConnectionLost) || attempt >= 5) throw err;
      await sleep(100);
    }
  }
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
    const source = randomFile(SIZE, 0x5eed);
    const segments = segmentsOf(SIZE, SEGMENT);
    const deadline = Date.now() + 45_000;

    const gw = await RestartableGateway.create('crash-many-');
    gateways.push(gw);

    // What happened, for failure messages (the last events are the interesting ones).
    const events: string[] = [];
    const t0 = Date.now();
    const note = (event: string) => {
      events.push(`${Date.now() - t0}ms ${event}`);
      if (events.length > 150) events.shift();
    };
    const failure = (message: string) => new Error(`${message}\nrecent events:\n  ${events.join('\n  ')}\ngateway output:\n${gw.log()}`);

    // ---- the client ----------------------------------------------------------------------
    /** Everything the client was told is received: its 201'd segments, 201 Range headers, status queries. */
    let acked: ByteRange[] = [];
    const stats = { segmentsSent: 0, acknowledged: 0, connectionErrors: 0, retryLater: 0, rounds: 0 };
    let finalAnswer: SimpleResponse | null = null;
    let stopped = false;

    // Set by the killer, obeyed by the client:
    /** Segment requests the client may start until the killer opens the next budget (refused connections do not count). */
    let budget = 0;
    let started = 0;
    /** Fired by the client on a 201 (after-201 kill). */
    let on201: (() => void) | null = null;
    /** Claimed by the first segment request that has sent half its body (mid-body kill). */
    let midBody: ((range: ByteRange) => Promise<void>) | null = null;
    /** The segment interrupted mid-body is not sent again until the killer has checked it was not recorded. */
    let quarantined: ByteRange | null = null;

    const acknowledge = (ranges: readonly ByteRange[]) => {
      for (const r of ranges) acked = addRange(acked, r);
    };
    /** The invariant: nothing acknowledged (`mustHave`, taken before the query was sent) is ever lost. */
    const expectNoLoss = (reported: readonly ByteRange[], mustHave: readonly ByteRange[], when: string) => {
      if (!covers(reported, mustHave)) {
        throw failure(`${when}: acknowledged ${formatRanges(mustHave, SIZE)} but the gateway reports ${formatRanges(reported, SIZE) || '(nothing)'}`);
      }
    };

    async function sendOne(range: ByteRange): Promise<void> {
      if (stopped || started >= budget || quarantined?.start === range.start) return;
      started++;
      stats.segmentsSent++;
      const pauseAt = midBody
        ? {
            bodyBytes: (range.end - range.start + 1) >> 1,
            hook: () => {
              const claim = midBody;
              midBody = null;
              return claim ? claim(range) : Promise.resolve();
            },
          }
        : undefined;
      let response: SimpleResponse;
      try {
        response = await sendSegment(gw.port, SESSION, source, range, { pauseAt });
      } catch (err) {
        if (!(err instanceof ConnectionLost)) throw err;
        stats.connectionErrors++;
        if (/ECONNREFUSED/.test(err.message)) started--; // the gateway is down: not a start
        note(`segment ${range.start / SEGMENT}: ${err.message}`);
        return;
      }
      note(`segment ${range.start / SEGMENT}: ${response.status} ${response.headers['range'] ?? ''}`);
      if (response.status === 201) {
        // D23: a 201 means the segment and the session state are on disk.
        stats.acknowledged++;
        acknowledge([range, ...rangesOf(response)]);
        const fire = on201;
        on201 = null;
        fire?.();
      } else if (response.status === 503) {
        stats.retryLater++; // D4/D7 "retry shortly": a later round sends it again
      } else if (response.status === 200) {
        finalAnswer = response; // the backend's answer, relayed (or replayed, D7)
      } else {
        throw failure(`segment ${range.start}-${range.end}: unexpected ${response.status} ${response.body.toString('latin1')}`);
      }
    }

    async function client(): Promise<SimpleResponse> {
      for (let round = 0; round < 5000 && !stopped; round++) {
        if (Date.now() > deadline) throw failure(`upload not finished in time; acknowledged ${formatRanges(acked, SIZE)}`);
        stats.rounds++;
        // Resume: ask what the gateway has (D22), send only what is missing.
        const mustHave = acked;
        let status: SimpleResponse;
        try {
          status = await statusQuery(gw.port, SESSION);
        } catch (err) {
          if (!(err instanceof ConnectionLost)) throw err;
          stats.connectionErrors++;
          await sleep(20); // the gateway is down (being restarted)
          continue;
        }
        let received: ByteRange[] = [];
        if (status.status === 200) {
          expect(status.headers['x-upload-total']).toBe(String(SIZE));
          received = rangesOf(status);
        } else if (status.status !== 404) {
          throw failure(`status query: unexpected ${status.status} ${status.body.toString('latin1')}`);
        }
        // A 404 is fine only while nothing was ever acknowledged (expectNoLoss checks that too).
        expectNoLoss(received, mustHave, `status query in round ${round}`);
        acknowledge(received);
        const missing = segments.filter((s) => !covers(received, [s]));
        // All received but no answer yet (killed during the hand-off, or before the answer
        // reached us): any segment again gets the backend's answer — a retried hand-off, or the
        // stored answer replayed.
        const toSend = missing.length > 0 ? missing : [segments[segments.length - 1]!];
        const sentBefore = stats.segmentsSent;
        await pool(toSend, PARALLEL, sendOne);
        if (finalAnswer) return finalAnswer;
        if (stats.segmentsSent === sentBefore) await sleep(10); // held back by the killer's budget
      }
      throw failure(stopped ? 'client stopped (the killer failed)' : 'client gave up after 5000 rounds');
    }

    // ---- the killer ----------------------------------------------------------------------
    // The kills are spread over the first two thirds of the upload (by acknowledged bytes). For each,
    // the killer arms a trigger, lets the client start only 1–3 more segment requests, and kills:
    // right after the first 201, while the first request to reach half its body waits (its first
    // half written to disk), or after a random 0–60 ms. Between a kill and the restart the data
    // file is checked (every acknowledged byte is there, as sent); after the restart the status
    // query must still report every acknowledged range, and not the interrupted segment (D8).
    const plan: KillMode[] = ['mid-body', 'after-201', 'random', 'mid-body', 'random', 'after-201', 'random', 'after-201'];
    const done: Array<{ mode: KillMode; at: number; halfOnDisk?: boolean }> = [];
    const skipped: KillMode[] = [];

    async function killer(): Promise<void> {
      for (let i = 0; i < plan.length && !stopped && Date.now() < deadline; i++) {
        const mode = plan[i]!;
        // Spread over the upload: let the client run freely up to this kill's share of the file.
        const target = (SIZE * 0.75 * i) / plan.length;
        budget = Infinity;
        while (coveredBytes(acked) < target && !stopped && Date.now() < deadline) await sleep(2);
        let fired: Promise<unknown>;
        let victim: ByteRange | null = null;
        let releaseVictim: () => void = () => undefined;
        if (mode === 'after-201') {
          fired = new Promise<void>((resolve) => (on201 = resolve));
        } else if (mode === 'mid-body') {
          fired = new Promise<void>((resolve) => {
            midBody = (range) => {
              victim = range;
              quarantined = range;
              resolve();
              return new Promise<void>((release) => (releaseVictim = release));
            };
          });
        } else {
          fired = sleep(Math.floor(rand() * 60));
        }
        // Armed: from now on the client may start only 1–3 more requests on this gateway.
        started = 0;
        budget = 1 + Math.floor(rand() * 3);
        const triggered = await withTimeout(fired, 5000);
        on201 = null;
        midBody = null;
        if (triggered === null) {
          skipped.push(mode);
          continue;
        }
        let halfOnDisk: boolean | undefined;
        if (victim) {
          const v: ByteRange = victim;
          const halfLength = (v.end - v.start + 1) >> 1;
          const expected = source.subarray(v.start, v.start + halfLength);
          const until = Date.now() + 2000;
          // (If the half never shows up in time, the kill still hits a body in flight, just earlier.)
          for (;;) {
            halfOnDisk = (await readAt(gw.dataPath(SESSION), v.start, halfLength)).equals(expected);
            if (halfOnDisk || Date.now() > until) break;
            await sleep(5);
          }
        }
        // Never kill once everything is acknowledged or the backend was called: at most one kill
        // can then have hit a hand-off (see the D7 comment below).
        if (finalAnswer || coveredBytes(acked) === SIZE || gw.backend.calls.length > 0) {
          releaseVictim();
          quarantined = null;
          skipped.push(mode);
          break;
        }

        const before = acked;
        note(`KILL #${gw.kills + 1} (${mode}${victim ? ` with segment ${(victim as ByteRange).start / SEGMENT} half sent` : ''})`);
        await gw.kill();
        releaseVictim();
        done.push({ mode, at: coveredBytes(before), halfOnDisk });
        // Dead gateway: every byte acknowledged before the kill is in the data file, as sent.
        await expectBytesOnDisk(gw.dataPath(SESSION), source, before).catch((err: Error) => {
          throw failure(`after kill #${done.length} (${mode}): ${err.message}`);
        });
        await gw.start();
        note('restarted');

        const mustHave = acked;
        const status = await statusOf(gw.port, SESSION);
        // (404: the first kill came before the gateway had even created the session.)
        if (status.status !== 200 && !(status.status === 404 && mustHave.length === 0)) {
          throw failure(`status after kill #${done.length}: ${status.status} ${status.body.toString('latin1')}`);
        }
        const reported = status.status === 200 ? rangesOf(status) : [];
        expectNoLoss(reported, mustHave, `after kill #${done.length} (${mode})`);
        // D8: the interrupted segment's bytes are not recorded (it was missing when it was sent).
        if (victim) {
          const v: ByteRange = victim;
          if (covers(reported, [v])) throw failure(`the interrupted segment ${v.start}-${v.end} was recorded`);
        }
        quarantined = null;
        acknowledge(reported);
      }
      budget = Infinity; // no more kills: the client finishes freely
    }

    const [clientResult, killerResult] = await Promise.allSettled([
      client().finally(() => (stopped = true)),
      killer().catch((err) => {
        stopped = true; // a broken invariant ends the client too
        throw err;
      }),
    ]);
    if (killerResult.status === 'rejected') throw killerResult.reason;
    if (clientResult.status === 'rejected') throw clientResult.reason;
    const answer = clientResult.value;

    // ---- what must hold at the end -------------------------------------------------------
    const summary =
      `${gw.kills} kills (${done.map((k) => `${k.mode}${k.halfOnDisk === undefined ? '' : k.halfOnDisk ? '(half written)' : '(half not yet written)'}@${(k.at / MiB).toFixed(0)}MiB`).join(', ')})` +
      `${skipped.length ? `, skipped ${skipped.join(',')}` : ''}; ${stats.segmentsSent} segments sent, ` +
      `${stats.acknowledged} acknowledged, ${stats.connectionErrors} connection errors, ${stats.retryLater} retry-later, ` +
      `${stats.rounds} rounds, ${gw.backend.calls.length} backend call(s)`;
    expect({ summary, kills: gw.kills >= 5 }).toEqual({ summary, kills: true });
    expect(done.some((k) => k.mode === 'mid-body')).toBe(true);
    expect(done.some((k) => k.mode === 'after-201')).toBe(true);
    expect(stats.connectionErrors).toBeGreaterThan(0);

    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toBe('backend 200\n');

    // D7: the hand-off happens exactly once. The one exception is a kill while the hand-off is
    // in flight (the backend got the form, the gateway died before it stored the answer): the
    // dead process's claim is then stale and the client's retry hands the upload off again.
    // The killer never kills once the backend was called or everything is acknowledged, so at
    // most one kill can land in a hand-off → at most 2 calls, both describing the same file.
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
    const callsAtEnd = calls.length;
    const last = segments[segments.length - 1]!;
    const replay = await sendSegment(gw.port, SESSION, source, last);
    expect(replay.status).toBe(answer.status);
    expect(replay.body.toString()).toBe(answer.body.toString());
    expect(replay.headers['x-capture-id']).toBe(answer.headers['x-capture-id']);
    expect(gw.backend.calls.length).toBe(callsAtEnd);
    // …also after one more kill -9 (the completion record is durable too).
    await gw.kill();
    await gw.start();
    const replayAfterKill = await sendSegment(gw.port, SESSION, source, last);
    expect(replayAfterKill.status).toBe(answer.status);
    expect(replayAfterKill.body.toString()).toBe(answer.body.toString());
    expect(replayAfterKill.headers['x-capture-id']).toBe(answer.headers['x-capture-id']);
    expect(gw.backend.calls.length).toBe(callsAtEnd);
    expect(sha256(await fs.readFile(gw.dataPath(SESSION)))).toBe(sha256(source));

    if (process.env.CRASH_SAFETY_VERBOSE) process.stdout.write(`crash-safety: ${summary}\n`);
  }, 120_000);

  test('two acknowledged segments survive a kill -9 right after the second 201: status and bytes on disk', async () => {
    const SIZE = 4 * MiB;
    const SESSION = 'crash-two-2';
    const source = randomFile(SIZE, 0xbeef);
    const first = { start: 0, end: MiB - 1 };
    const second = { start: 2 * MiB, end: 3 * MiB - 1 };
    const both = `0-${MiB - 1}/${SIZE},${2 * MiB}-${3 * MiB - 1}/${SIZE}`;

    const gw = await RestartableGateway.create('crash-two-');
    gateways.push(gw);

    const a = await sendSegment(gw.port, SESSION, source, first);
    expect(a.status).toBe(201);
    expect(a.headers['range']).toBe(`0-${MiB - 1}/${SIZE}`);
    const b = await sendSegment(gw.port, SESSION, source, second);
    await gw.kill(); // the very next thing after reading the 201
    expect(b.status).toBe(201);
    expect(b.headers['range']).toBe(both);

    await expectBytesOnDisk(gw.dataPath(SESSION), source, [first, second]);
    await gw.start();

    const status = await statusOf(gw.port, SESSION);
    expect(status.status).toBe(200);
    expect(status.headers['range']).toBe(both);
    expect(status.body.toString('latin1')).toBe(both);
    expect(status.headers['x-upload-total']).toBe(String(SIZE));
    expect(status.headers['x-upload-state']).toBe('incomplete');
    await expectBytesOnDisk(gw.dataPath(SESSION), source, [first, second]);

    // The session continues where it was: the missing segments complete it, one hand-off.
    expect((await sendSegment(gw.port, SESSION, source, { start: MiB, end: 2 * MiB - 1 })).status).toBe(201);
    const completed = await sendSegment(gw.port, SESSION, source, { start: 3 * MiB, end: SIZE - 1 });
    expect(completed.status).toBe(200);
    expect(gw.backend.calls.length).toBe(1);
    expect(field(gw.backend.calls[0]!, 'sha256')).toBe(sha256(source));
    expect(field(gw.backend.calls[0]!, 'size')).toBe(String(SIZE));
    expect(sha256(await fs.readFile(gw.dataPath(SESSION)))).toBe(sha256(source));
  }, 60_000);

  test('a kill -9 during the hand-off: the retry hands off again (the one D7 exception), then the answer is replayed', async () => {
    const SEGMENT = 64 * 1024;
    const SIZE = 3 * SEGMENT;
    const SESSION = 'crash-handoff-3';
    const HOLD_MS = 2000;
    const source = randomFile(SIZE, 0xfeed);
    const segments = segmentsOf(SIZE, SEGMENT);

    const gw = await RestartableGateway.create('crash-handoff-');
    gateways.push(gw);
    gw.backend.delayMs = HOLD_MS; // the backend takes the form but holds its answer

    expect((await sendSegment(gw.port, SESSION, source, segments[0]!)).status).toBe(201);
    expect((await sendSegment(gw.port, SESSION, source, segments[1]!)).status).toBe(201);
    const completing = sendSegment(gw.port, SESSION, source, segments[2]!).catch((err: unknown) => err);
    const until = Date.now() + 10_000;
    while (gw.backend.calls.length === 0 && Date.now() < until) await sleep(5);
    const heldUntil = Date.now() + HOLD_MS;
    expect(gw.backend.calls.length).toBe(1);
    await gw.kill(); // mid hand-off: the backend has the form, the gateway has no answer yet
    expect(await completing).toBeInstanceOf(ConnectionLost);
    gw.backend.delayMs = 0;
    await gw.start();

    // Everything is received; the hand-off claim belongs to a dead process.
    const status = await statusOf(gw.port, SESSION);
    expect(status.status).toBe(200);
    expect(status.headers['range']).toBe(`0-${SIZE - 1}/${SIZE}`);
    expect(status.headers['x-upload-state']).not.toBe('complete');

    // The client retries the last segment: handed off again (the second and last call)…
    const retried = await sendSegment(gw.port, SESSION, source, segments[2]!);
    expect(retried.status).toBe(200);
    expect(retried.headers['x-capture-id']).toBe('2');
    expect(gw.backend.calls.length).toBe(2);
    for (const call of gw.backend.calls) {
      expect(field(call, 'sha256')).toBe(sha256(source));
      expect(field(call, 'size')).toBe(String(SIZE));
    }
    // …and from then on the stored answer is replayed, for any segment of the upload.
    for (const seg of [segments[2]!, segments[0]!]) {
      const replay = await sendSegment(gw.port, SESSION, source, seg);
      expect(replay.status).toBe(200);
      expect(replay.headers['x-capture-id']).toBe('2');
    }
    expect(gw.backend.calls.length).toBe(2);
    expect((await statusQuery(gw.port, SESSION)).headers['x-upload-state']).toBe('complete');

    // Let the backend's held answer (to the dead gateway) go out, so no timer outlives the test.
    await sleep(Math.max(0, heldUntil - Date.now()) + 50);
  }, 60_000);

  test('kill -9 while journals are appended to and compacted: nothing acknowledged is lost, no torn state', async () => {
    // Tiny segments: every one appends a journal record, and every 512 records a session's journal
    // is compacted (written to a temporary file and renamed over it). Kills land at random moments
    // of that stream, and some exactly when a compaction's temporary file appears.
    const SIZE = 6000;
    const SESSIONS = ['journal-a', 'journal-b', 'journal-c'];
    const sources = new Map(SESSIONS.map((id, k) => [id, randomFile(SIZE, 0x10 + k)]));
    const acked = new Map<string, ByteRange[]>(SESSIONS.map((id) => [id, []]));
    const rand = prng(0x7ea);
    const gw = await RestartableGateway.create('crash-journal-');
    gateways.push(gw);
    let stop = false;
    const answers = new Map<string, SimpleResponse>();

    async function uploader(id: string): Promise<void> {
      const source = sources.get(id)!;
      let offset = 0;
      while (!stop && !answers.has(id)) {
        if (offset >= SIZE) {
          // Resume from what the gateway reports (the status query after a restart).
          const status = await statusQuery(gw.port, id).catch(() => null);
          if (!status || (status.status !== 200 && status.status !== 404)) {
            await sleep(20);
            continue;
          }
          const reported = status.status === 200 ? rangesOf(status) : [];
          offset = missingRanges(reported, SIZE)[0]?.start ?? SIZE - 1;
        }
        const length = Math.min(SIZE - offset, 1 + Math.floor(rand() * 7));
        const range = { start: offset, end: offset + length - 1 };
        let response: SimpleResponse;
        try {
          response = await sendSegment(gw.port, id, source, range);
        } catch (err) {
          if (!(err instanceof ConnectionLost)) throw err;
          await sleep(10);
          offset = SIZE; // ask again where to go on
          continue;
        }
        if (response.status === 201) {
          acked.set(id, addRange(addRange(acked.get(id)!, range), rangesOf(response)[0] ?? range));
          offset = range.end + 1;
        } else if (response.status === 200) {
          answers.set(id, response);
        } else if (response.status === 503) {
          await sleep(5);
        } else {
          throw new Error(`${id} ${range.start}-${range.end}: ${response.status} ${response.body.toString()}`);
        }
      }
    }

    /** Kills when a compaction's temporary file shows up in the state directory (or after a random wait). */
    async function killer(): Promise<{ kills: number; midCompaction: number }> {
      let midCompaction = 0;
      // Once every session exists, a temporary file in the state directory is a compaction's.
      while (SESSIONS.some((id) => acked.get(id)!.length === 0)) await sleep(5);
      for (let k = 0; k < 10 && !stop; k++) {
        const temporary = (name: string | null) => !!name && /^\.[0-9a-f]{12}\.tmp$/.test(name);
        const hit = await new Promise<boolean>((resolve) => {
          const watcher = watch(gw.state, (_event, name) => {
            if (!temporary(name)) return;
            watcher.close();
            resolve(true);
          });
          setTimeout(() => {
            watcher.close();
            resolve(false);
          }, k % 2 === 0 ? 3000 : 50 + Math.floor(rand() * 250));
        });
        await gw.kill();
        // Interrupted mid-compaction when its temporary file is still there.
        if (hit && readdirSync(gw.state).some((n) => temporary(n))) midCompaction++;
        // Dead gateway: every acknowledged byte is on disk as sent.
        for (const id of SESSIONS) await expectBytesOnDisk(gw.dataPath(id), sources.get(id)!, acked.get(id)!);
        await gw.start();
        for (const id of SESSIONS) {
          const status = await statusOf(gw.port, id);
          const reported = status.status === 200 ? rangesOf(status) : [];
          if (!covers(reported, acked.get(id)!)) {
            throw new Error(`after kill ${k + 1}: ${id} acknowledged ${formatRanges(acked.get(id)!, SIZE)} but the gateway reports ${formatRanges(reported, SIZE)}\n${gw.log()}`);
          }
        }
        await sleep(100);
      }
      return { kills: gw.kills, midCompaction };
    }

    const uploads = Promise.all(SESSIONS.map(uploader));
    const result = await killer();
    if (process.env.CRASH_SAFETY_VERBOSE) process.stdout.write(`killer done ${JSON.stringify(result)} ${[...acked].map(([i, r]) => `${i}:${coveredBytes(r)}`).join(" ")}\n`);
    await uploads;
    expect(result.kills).toBe(10);
    // At least one kill interrupted a compaction (its temporary file was left behind).
    expect(result.midCompaction).toBeGreaterThan(0);
    // Every upload completes, byte-identical, handed off once.
    for (const id of SESSIONS) {
      expect(answers.get(id)?.status).toBe(200);
      const calls = gw.backend.calls.filter((c) => field(c, 'path') === gw.dataPath(id));
      expect(calls).toHaveLength(1);
      expect(field(calls[0]!, 'sha256')).toBe(sha256(sources.get(id)!));
      expect(sha256(await fs.readFile(gw.dataPath(id)))).toBe(sha256(sources.get(id)!));
    }
  }, 120_000);
});
