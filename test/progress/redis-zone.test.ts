/** The Redis progress zone against a real redis-server: the same contract, plus two instances sharing it. */
import type Redis from 'ioredis';
import { RedisProgressZone } from '../../src/progress/redis-zone';
import { startRedis, type RedisProcess } from '../helpers/redis';
import { progressStoreContract } from './contracts';

let redis: RedisProcess;
const clients: Redis[] = [];
let prefixes = 0;

function client(): Redis {
  const c = redis.client();
  clients.push(c);
  return c;
}

beforeAll(async () => {
  // Throws (failing every test) when redis-server is not installed: never skipped.
  redis = await startRedis();
}, 20_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await redis?.stop();
});

const stores = new WeakMap<RedisProgressZone, string>();

progressStoreContract(
  'RedisProgressZone',
  async () => {
    const prefix = `pz${++prefixes}:`;
    const zone = new RedisProgressZone(client(), 'z', prefix);
    stores.set(zone, prefix);
    return zone;
  },
  { peer: async (zone) => new RedisProgressZone(client(), 'z', stores.get(zone as RedisProgressZone)!) },
);

test('an entry whose instance died (no report for a while) expires by itself', async () => {
  const c = client();
  const zone = new RedisProgressZone(c, 'z', 'dead:');
  await zone.begin('x', { kind: 'request', size: 10 }, 'a');
  const ttl = await c.pttl('dead:p:z:x');
  expect(ttl).toBeGreaterThan(60_000);
  expect(ttl).toBeLessThanOrEqual(120_000);
  await zone.close();
});
