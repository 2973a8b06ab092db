import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FileSessionStore } from '../../src/state/file-session-store';
import { sampleRecord, sessionStoreContract } from './contracts';
import { tempDir } from '../helpers/process';

sessionStoreContract('FileSessionStore (durable, levels 1 2)', async () => new FileSessionStore(tempDir('state-'), [1, 2], true));
sessionStoreContract('FileSessionStore (no fsync, no levels)', async () => new FileSessionStore(tempDir('state-'), [], false));

describe('FileSessionStore on disk', () => {
  test('records survive a new instance on the same directory (restart)', async () => {
    const dir = tempDir('state-');
    await new FileSessionStore(dir, [1], true).put(sampleRecord('persist1'));
    expect((await new FileSessionStore(dir, [1], true).get('persist1'))!.fileName).toBe('big.TXT');
  });

  test('files use the configured access mode and hashed directories', async () => {
    const dir = tempDir('state-');
    await new FileSessionStore(dir, [1], true, 0o640).put(sampleRecord('mode7'));
    const stat = await fs.stat(path.join(dir, '7', 'mode7.state.json'));
    expect(stat.mode & 0o777).toBe(0o640);
  });

  test('no temporary files are left behind after many concurrent puts of one id', async () => {
    const dir = tempDir('state-');
    const store = new FileSessionStore(dir, [], true);
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.put(sampleRecord('same', { total: i + 1 }))));
    const names = await fs.readdir(dir);
    expect(names).toEqual(['same.state.json']);
    expect((await store.get('same'))!.total).toBeGreaterThan(0);
  });
});
