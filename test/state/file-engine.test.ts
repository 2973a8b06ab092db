/**
 * The file engine (`upload_state_store`): the contract, plus what only journals on disk show —
 * a restart replays them, a torn tail is ignored and cut, long journals are compacted, records of
 * earlier versions are migrated, and idle sessions leave memory.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { FileSessionEngine } from '../../src/state/file-engine';
import { DataFilePool } from '../../src/store/data-file-pool';
import { tempDir } from '../helpers/process';
import { ANSWER, newId, POLICY, restartable, segmentOf, send, sessionEngineContract, upload } from './engine-contract';

function fileEngine(dir: string, pool: DataFilePool, extra: Partial<ConstructorParameters<typeof FileSessionEngine>[0]> = {}): FileSessionEngine {
  return new FileSessionEngine({ dir, levels: [1], instanceId: randomUUID(), dataFiles: pool, ...extra });
}

sessionEngineContract('files (journals)', async ({ pool, store }) => {
  const dir = path.join(path.dirname(store), 'state');
  return restartable(store, () => fileEngine(dir, pool));
});

describe('file engine on disk', () => {
  let pool: DataFilePool;
  let root: string;
  let store: string;
  let dir: string;
  beforeEach(() => {
    pool = new DataFilePool();
    root = tempDir('journal-');
    store = path.join(root, 'store');
    dir = path.join(root, 'state');
    mkdirSync(store);
  });
  afterEach(() => pool.close());

  test('one journal line per acknowledged segment, readable; the state replays after a restart', async () => {
    const engine = fileEngine(dir, pool);
    const id = newId('j');
    const file = Buffer.from('0123456789');
    await upload(engine, store, id, file, 0, 2);
    await upload(engine, store, id, file, 6, 9);
    const journal = engine.journalPath(id);
    expect(journal).toBe(path.join(dir, id.slice(-1), `${id}.journal`));
    const lines = readFileSync(journal, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l.slice(9)).t)).toEqual(['h', 'f', 'r', 'r']);
    expect(statSync(journal).mode & 0o777).toBe(0o600);
    await engine.close();
    const again = fileEngine(dir, pool);
    expect((await again.status(id))?.ranges).toEqual([{ start: 0, end: 2 }, { start: 6, end: 9 }]);
    expect((await upload(again, store, id, file, 3, 5)).kind).toBe('handoff');
    await again.close();
  });

  test('a torn last line (a crash mid-append) is ignored, cut off, and appends go on after the good prefix', async () => {
    const engine = fileEngine(dir, pool);
    const id = newId('t');
    const file = Buffer.from('abcdefgh');
    await upload(engine, store, id, file, 0, 3);
    await engine.close();
    const journal = engine.journalPath(id);
    const good = readFileSync(journal);
    appendFileSync(journal, '1234abcd {"t":"r","s":4,"e":7,"u":1,');
    const again = fileEngine(dir, pool);
    expect((await again.status(id))?.ranges).toEqual([{ start: 0, end: 3 }]);
    expect(readFileSync(journal).equals(good)).toBe(true);
    expect((await upload(again, store, id, file, 4, 7)).kind).toBe('handoff');
    await again.close();
  });

  test('a journal is compacted after many segments, and a finished one to a single line', async () => {
    const engine = fileEngine(dir, pool);
    const id = newId('c');
    const file = Buffer.alloc(700, 3);
    for (let k = 0; k < 699; k++) await upload(engine, store, id, file, k, k);
    const journal = engine.journalPath(id);
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(journal, 'utf8').trimEnd().split('\n').length).toBeLessThan(300);
    const done = await upload(engine, store, id, file, 699, 699);
    if (done.kind !== 'handoff') throw new Error('expected a hand-off');
    await engine.finishHandoff(done.record, done.claim, ANSWER, POLICY);
    expect(readFileSync(journal, 'utf8').trimEnd().split('\n')).toHaveLength(1);
    await engine.close();
    const again = fileEngine(dir, pool);
    expect((await again.status(id))?.completion).toEqual(ANSWER);
    await again.close();
  });

  test('a record file of an earlier version is migrated to a journal on first use', async () => {
    const id = newId('l');
    const dataPath = path.join(store, id.slice(-1), id);
    mkdirSync(path.dirname(dataPath), { recursive: true });
    writeFileSync(dataPath, 'hello');
    const legacy = path.join(dir, id.slice(-1), `${id}.state.json`);
    mkdirSync(path.dirname(legacy), { recursive: true });
    const now = Date.now();
    writeFileSync(legacy, JSON.stringify({ id, total: 10, ranges: [{ start: 0, end: 4 }], dataPath, fileName: 'f.bin', contentType: 'text/plain', fieldName: '', createdAt: now, updatedAt: now, expiresAt: now + 60_000 }), { mode: 0o600 });
    const engine = fileEngine(dir, pool);
    expect((await engine.status(id))?.ranges).toEqual([{ start: 0, end: 4 }]);
    expect(existsSync(legacy)).toBe(false);
    expect(existsSync(engine.journalPath(id))).toBe(true);
    const done = await upload(engine, store, id, Buffer.from('helloworld'), 5, 9);
    expect(done.kind).toBe('handoff');
    expect(readFileSync(dataPath, 'utf8')).toBe('helloworld');
    await engine.close();
  });

  test('memory is bounded: idle sessions beyond the capacity leave memory and their journals close; they reload on use', async () => {
    const engine = fileEngine(dir, pool, { capacity: 5, openJournals: 3, idleMs: 1000 });
    const ids = Array.from({ length: 20 }, () => newId('b'));
    for (const id of ids) await upload(engine, store, id, Buffer.from('abcd'), 0, 1);
    await new Promise((r) => setTimeout(r, 1100));
    expect(engine.loaded.sessions).toBeLessThanOrEqual(5);
    expect(engine.loaded.journals).toBeLessThanOrEqual(3);
    for (const id of ids) expect((await engine.status(id))?.ranges).toEqual([{ start: 0, end: 1 }]);
    const ticket = await engine.begin(segmentOf(store, ids[0]!, 2, 3, 4), POLICY);
    expect((await send(engine, ticket, Buffer.from('abcd'))).kind).toBe('handoff');
    await engine.close();
  });
});
