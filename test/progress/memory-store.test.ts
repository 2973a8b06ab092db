import { MemoryProgressStore } from '../../src/progress/memory-progress-store';
import { entryCost } from '../../src/progress/types';
import { progressStoreContract } from './contracts';

progressStoreContract('MemoryProgressStore', async () => new MemoryProgressStore('z', 1024 * 1024));

test('a full zone refuses new uploads (the module answers 503) and takes them again once entries expire', async () => {
  const store = new MemoryProgressStore('z', entryCost('a') + entryCost('b'));
  try {
    expect(await store.begin('a', { kind: 'request', size: 1 }, 'r')).toBe('ok');
    expect(await store.begin('b', { kind: 'request', size: 1 }, 'r')).toBe('ok');
    expect(await store.begin('c', { kind: 'request', size: 1 }, 'r')).toBe('full');
    await store.end('a', 'r', { finish: 200, ttlMs: 0 });
    expect(await store.begin('c', { kind: 'request', size: 1 }, 'r')).toBe('ok');
  } finally {
    await store.close();
  }
});
