import { MemorySessionStore } from '../../src/state/memory-session-store';
import { MemoryLocker } from '../../src/state/memory-locker';
import { lockerContract, sessionStoreContract } from './contracts';

sessionStoreContract('MemorySessionStore', async () => new MemorySessionStore());
lockerContract('MemoryLocker', async () => new MemoryLocker());
