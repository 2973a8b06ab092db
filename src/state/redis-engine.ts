/**
 * Sessions shared by several gateway instances in Redis (`upload_state_redis`). The rules run as
 * Lua scripts (`redis-scripts.ts`): a segment costs two round trips, reserve-and-read (`BEGIN`)
 * and the fenced commit (`COMMIT`); a new session's first segment one more (`RECORD_FILE`).
 *
 * A segment's reservation is a Redis key with a time to live, renewed by a timer while the body
 * streams. Fencing: the commit writes only while that key exists, and before every write of the
 * body the instance checks that the reservation's local deadline (last renewal + time to live −
 * a safety margin, on the monotonic clock) has not passed, so an instance paused past its lease
 * (SIGSTOP, a stalled VM) writes nothing when it resumes: the other instance that took the range
 * meanwhile keeps its bytes. What remains is one write already handed to the kernel when the pause
 * began (see README, "Failure and security behaviour").
 */
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { retryLater, HttpError } from '../protocol/http-errors';
import { type CompletionRecord, type HandoffClaim, type SegmentRequest, type SessionRecord } from '../session/model';
import { decideSweep, isFileComplete } from '../session/rules';
import type { DataFilePool } from '../store/data-file-pool';
import { fileIdAt, unlinkIfOwned } from '../store/files';
import { committedEnd, type CommitOutcome, type EnginePolicy, type ProvedSegment, type SegmentTicket, type SessionEngine } from './engine';
import { LeaseLostError, refusalError } from './errors';
import { defineScripts, DEFAULT_REDIS_PREFIX, redisCall, type ScriptRunner } from './redis-client';
import { IGNORE_STATE, timed, type StateObserver } from './observer';
import * as scripts from './redis-scripts';
import { acquireSessionFile, createRecordedFile } from './session-file';
import { Reservation } from './redis-reservation';

export interface RedisEngineOptions {
  prefix?: string;
  instanceId: string;
  dataFiles: DataFilePool;
  /** Lifetime of a reservation that is not renewed (its instance died or paused). Default 6 s. */
  reserveTtlMs?: number;
  /** Told about round trips, failures and sessions (metrics). */
  observer?: StateObserver;
}

const SCRIPT_NAMES = ['BEGIN', 'RECORD_FILE', 'COMMIT', 'ABORT', 'DISCARD', 'FINISH', 'RELEASE', 'SWEEP', 'TERMINATE', 'DROP_TOMBSTONE', 'RENEW'] as const;
type ScriptName = (typeof SCRIPT_NAMES)[number];

interface RedisTicket extends SegmentTicket {
  readonly fence: Reservation;
}

export class RedisSessionEngine implements SessionEngine {
  private readonly prefix: string;
  private readonly reserveTtlMs: number;
  private readonly run: Record<ScriptName, ScriptRunner>;
  private readonly reservations = new Set<Reservation>();
  private readonly observer: StateObserver;

  constructor(
    private readonly client: Redis,
    private readonly options: RedisEngineOptions,
  ) {
    this.observer = options.observer ?? IGNORE_STATE;
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.reserveTtlMs = options.reserveTtlMs ?? 6000;
    this.run = defineScripts(client, 'ugSession', Object.fromEntries(SCRIPT_NAMES.map((n) => [n, scripts[n]])) as Record<ScriptName, string>);
  }

  private key(kind: 's' | 'rs' | 't', id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private get reservationPrefix(): string {
    return `${this.prefix}rv:`;
  }

  private call(name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.observed(name.toLowerCase(), () => this.run[name](keys, args));
  }

  /** One round trip, timed and counted (a failure becomes `StateUnavailableError`). */
  private async observed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await timed(() => redisCall(`session state (${operation})`, fn), (seconds) => this.observer.redisRoundTrip(operation, seconds));
    } catch (err) {
      this.observer.redisFailed(operation);
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Segments
  // -------------------------------------------------------------------------------------------

  async begin(segment: SegmentRequest, policy: EnginePolicy): Promise<SegmentTicket> {
    const { id } = segment;
    for (let attempt = 0; ; attempt++) {
      const token = randomBytes(16).toString('hex');
      const requestedAt = performance.now();
      const now = Date.now();
      const answer = (await this.call(
        'BEGIN',
        [this.key('s', id), this.key('rs', id), this.reservationPrefix + token, `${this.prefix}ids`, this.key('t', id)],
        [now, segment.start, segment.end, segment.total ?? '', id, segment.dataPath, segment.meta.fileName, segment.meta.contentType, segment.meta.fieldName,
          policy.sessionTimeoutMs, policy.handoffTimeoutMs, this.options.instanceId, '0', this.reserveTtlMs, token, this.reservationPrefix,
          segment.append ? 'append' : segment.declare ? 'declare' : '', segment.declare?.concat ?? '', segment.declare?.metadata ?? ''],
      )) as [string, ...unknown[]];
      if (answer[0] === 'refuse') throw refusalError({ status: Number(answer[1]), reason: String(answer[2]) });
      if (answer[0] === 'expired') {
        if (attempt > 2) throw retryLater('the session is being expired; retry shortly');
        await this.sweepRecord(toRecord(answer[1] as string[]), Date.now());
        continue;
      }
      const created = answer[1] === '1';
      if (created) this.observer.sessionOpened();
      // `start-end`; an empty range ends before it starts (`0--1`).
      const [, start, end] = /^(\d+)-(-?\d+)$/.exec(String(answer[2]))!.map(Number);
      let record = toRecord(answer[3] as string[]);
      const reservation = new Reservation(this.reservationPrefix + token, token, { start, end }, this.reserveTtlMs, requestedAt, () => this.renew(id, token));
      this.reservations.add(reservation);
      const partial: Omit<RedisTicket, 'file'> = { id, record, range: reservation.range, created, fence: reservation };
      try {
        if (record.fileId === null && !isFileComplete(record)) record = await this.createDataFile(record, reservation, policy, !created);
        const file = await acquireSessionFile(this.options.dataFiles, record);
        return { ...partial, record, file };
      } catch (err) {
        await this.abort({ ...partial, file: null } as RedisTicket, policy).catch(() => undefined);
        throw err;
      }
    }
  }

  /** Creates the session's data file (`createSessionFile`) and records its identity, fenced by the creator's reservation. */
  private async createDataFile(record: SessionRecord, reservation: Reservation, policy: EnginePolicy, recovering: boolean): Promise<SessionRecord> {
    const fileId = await createRecordedFile(this.options.dataFiles, record, policy, recovering, async (id) => {
      const answer = await this.call('RECORD_FILE', [this.key('s', record.id), reservation.key, this.key('t', record.id)], [record.createdAt, id]);
      if (answer === 'fenced') throw new LeaseLostError();
      if (answer !== 'ok') throw new HttpError(409, 'the session expired while its data file was being created');
    });
    return { ...record, fileId, replaces: null };
  }

  private async renew(id: string, token: string): Promise<boolean> {
    const answer = await this.call('RENEW', [this.reservationPrefix + token, this.key('rs', id)], [this.reserveTtlMs]);
    return answer === 1;
  }

  async commit(ticket: SegmentTicket, proved: ProvedSegment, policy: EnginePolicy): Promise<CommitOutcome> {
    const { fence: reservation } = ticket as RedisTicket;
    try {
      reservation.check();
      const now = Date.now();
      const end = committedEnd(ticket.range, proved);
      const answer = (await this.call(
        'COMMIT',
        [this.key('s', ticket.id), reservation.key, this.key('rs', ticket.id)],
        [reservation.token, ticket.record.createdAt, ticket.range.start, end, proved.total ?? '', now, policy.sessionTimeoutMs, policy.handoffTimeoutMs,
          this.options.instanceId, '0', proved.meta.fileName, proved.meta.contentType, proved.meta.fieldName],
      )) as [string, ...unknown[]];
      if (answer[0] === 'fenced') throw new LeaseLostError();
      if (answer[0] === 'refuse') throw refusalError({ status: Number(answer[1]), reason: String(answer[2]) });
      const record = toRecord(answer[1] as string[]);
      if (answer[0] === 'handoff') return { kind: 'handoff', record, claim: { ...record.handoff! } };
      return { kind: answer[0] as 'partial' | 'replay', record };
    } finally {
      this.settle(ticket as RedisTicket);
    }
  }

  async abort(ticket: SegmentTicket, _policy: EnginePolicy): Promise<void> {
    const reservation = (ticket as RedisTicket).fence;
    this.settle(ticket as RedisTicket);
    const answer = await this.call('ABORT', [this.key('s', ticket.id), reservation.key, this.key('rs', ticket.id)], [reservation.token, this.reservationPrefix]);
    if (answer !== 'unused') return;
    // A session that never got a byte leaves nothing: its file (if it still is its), then its record.
    const current = await this.status(ticket.id);
    if (!current || current.createdAt !== ticket.record.createdAt || current.ranges.length > 0) return;
    if (current.fileId) {
      await this.options.dataFiles.evict(current.dataPath);
      await unlinkIfOwned(current.dataPath, current.fileId);
    }
    await this.call('DISCARD', [this.key('s', ticket.id), this.key('rs', ticket.id), `${this.prefix}ids`], [current.createdAt, ticket.id, this.reservationPrefix]);
    this.observer.sessionClosed('discarded');
  }

  private settle(ticket: RedisTicket): void {
    ticket.fence.stop();
    if (!this.reservations.delete(ticket.fence)) return;
    if (ticket.file) this.options.dataFiles.release(ticket.file);
  }

  // -------------------------------------------------------------------------------------------
  // Hand-off
  // -------------------------------------------------------------------------------------------

  async finishHandoff(record: SessionRecord, _claim: HandoffClaim, completion: CompletionRecord, policy: EnginePolicy): Promise<void> {
    const now = Date.now();
    await this.call('FINISH', [this.key('s', record.id)], [record.createdAt, JSON.stringify(completion), now + policy.completedRetentionMs]);
    this.observer.sessionClosed('completed');
    await this.options.dataFiles.evict(record.dataPath);
    // upload_cleanup: only after the answer is stored.
    if (completion.fileRemoved && record.fileId) await unlinkIfOwned(record.dataPath, record.fileId).catch(() => undefined);
  }

  async releaseHandoff(record: SessionRecord, claim: HandoffClaim, _policy: EnginePolicy): Promise<void> {
    await this.call('RELEASE', [this.key('s', record.id)], [record.createdAt, claim.owner, claim.startedAt]);
  }

  async terminate(id: string, policy: EnginePolicy): Promise<boolean> {
    const now = Date.now();
    const answer = (await this.call('TERMINATE', [this.key('s', id)], [now, policy.handoffTimeoutMs, this.options.instanceId, '0'])) as [string, ...unknown[]];
    if (answer[0] === 'none') return false;
    if (answer[0] === 'refuse') throw refusalError({ status: Number(answer[1]), reason: String(answer[2]) });
    await this.sweepRecord(toRecord(answer[1] as string[]), now);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Reads and maintenance
  // -------------------------------------------------------------------------------------------

  async status(id: string): Promise<SessionRecord | undefined> {
    const flat = await this.observed('status', () => this.client.hgetall(this.key('s', id)));
    if (!flat || Object.keys(flat).length === 0) return undefined;
    const record = toRecord(Object.entries(flat).flat());
    return record.expiresAt <= Date.now() ? undefined : record;
  }

  async sweep(_policy: EnginePolicy): Promise<number> {
    let removed = 0;
    let open = 0;
    for await (const id of this.members(`${this.prefix}ids`)) {
      const flat = await redisCall('session state (sweep)', () => this.client.hgetall(this.key('s', id)));
      if (!flat || Object.keys(flat).length === 0) {
        await this.client.srem(`${this.prefix}ids`, id).catch(() => undefined);
        continue;
      }
      const record = toRecord(Object.entries(flat).flat());
      if (await this.sweepRecord(record, Date.now())) removed++;
      else if (!record.completion) open++;
    }
    this.observer.sessionsCounted(open);
    for await (const id of this.members(`${this.prefix}tombs`)) {
      const tomb = await redisCall('session state (sweep)', () => this.client.hgetall(this.key('t', id)));
      if (tomb.fileId && (await fileIdAt(tomb.dataPath).catch(() => tomb.fileId)) === tomb.fileId) continue;
      await this.call('DROP_TOMBSTONE', [this.key('t', id), `${this.prefix}tombs`], [tomb.fileId ?? '', id]);
    }
    return removed;
  }

  /** Expires (data first) or retires an expired session; true when it went. */
  private async sweepRecord(record: SessionRecord, now: number): Promise<boolean> {
    const action = decideSweep(record, now);
    if (action === 'keep') return false;
    await this.options.dataFiles.evict(record.dataPath);
    if (action === 'expire' && record.fileId && !record.completion) await unlinkIfOwned(record.dataPath, record.fileId);
    const answer = await this.call(
      'SWEEP',
      [this.key('s', record.id), this.key('rs', record.id), `${this.prefix}ids`, this.key('t', record.id), `${this.prefix}tombs`],
      [record.createdAt, now, record.id, action, now],
    );
    if (answer === 1 && action === 'expire') this.observer.sessionClosed('expired');
    return answer === 1;
  }

  private async *members(set: string): AsyncIterable<string> {
    let cursor = '0';
    do {
      const [next, batch] = await redisCall('session state (sweep)', () => this.client.sscan(set, cursor, 'COUNT', 500));
      cursor = next;
      yield* batch;
    } while (cursor !== '0');
  }

  /** Releases what this instance still holds (a clean shutdown frees its ranges at once). */
  async close(): Promise<void> {
    for (const reservation of this.reservations) reservation.stop();
    this.reservations.clear();
  }
}

/** A session hash (flat field/value list) as a record. */
export function toRecord(flat: readonly string[]): SessionRecord {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  const ranges = h.ranges ? h.ranges.split(',').map((r) => {
    const [start, end] = r.split('-').map(Number);
    return { start: start!, end: end! };
  }) : [];
  const record: SessionRecord = {
    id: h.id ?? '', total: h.total ? Number(h.total) : null, ranges, dataPath: h.dataPath ?? '',
    fileId: h.fileId || null, replaces: h.replaces || null,
    fileName: h.fileName ?? '', contentType: h.contentType ?? '', fieldName: h.fieldName ?? '',
    createdAt: Number(h.createdAt), updatedAt: Number(h.updatedAt), expiresAt: Number(h.expiresAt),
  };
  if (h.claimOwner) record.handoff = { owner: h.claimOwner, startedAt: Number(h.claimAt) };
  if (h.completion) record.completion = JSON.parse(h.completion) as CompletionRecord;
  if (h.declared === '1') record.declared = true;
  if (h.concat) record.concat = h.concat;
  if (h.metadata) record.metadata = h.metadata;
  return record;
}
