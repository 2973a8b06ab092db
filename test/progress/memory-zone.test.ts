import { MemoryProgressZone } from '../../src/progress/memory-zone';
import { entryCost } from '../../src/progress/types';
import { progressStoreContract } from './contracts';

progressStoreContract('MemoryProgressZone', async () => new MemoryProgressZone('z', 1024 * 1024));

test('a full zone refuses new uploads (the module answers 503) and takes them again once entries expire', async () => {
  const zone = new MemoryProgressZone('z', entryCost('a') + entryCost('b'));
  try {
    expect(await zone.begin('a', { kind: 'request', size: 1 }, 'r')).toBe('ok');
    expect(await zone.begin('b', { kind: 'request', size: 1 }, 'r')).toBe('ok');
    expect(await zone.begin('c', { kind: 'request', size: 1 }, 'r')).toBe('full');
    await zone.end('a', 'r', { finish: 200, ttlMs: 0 });
    expect(await zone.begin('c', { kind: 'request', size: 1 }, 'r')).toBe('ok');
  } finally {
    await zone.close();
  }
});
