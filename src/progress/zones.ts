/**
 * The `upload_progress` zones of a configuration, chosen at start-up: in process, or in the Redis
 * of the locations that use the zone (`upload_state_redis`), shared by every gateway instance.
 */
import type { GatewayConfig } from '../config/types';
import type { StateBackends } from '../state/backends';
import { MemoryProgressStore } from './memory-progress-store';
import { RedisProgressStore } from './redis-progress-store';
import type { ProgressStore } from './types';

export class ProgressZones {
  private readonly stores = new Map<string, ProgressStore>();

  constructor(config: GatewayConfig, state: StateBackends) {
    for (const zone of config.progressZones) {
      this.stores.set(
        zone.name,
        zone.stateRedis ? new RedisProgressStore(state.redisClient(zone.stateRedis), zone.name, state.prefix()) : new MemoryProgressStore(zone.name, zone.size),
      );
    }
  }

  get(zone: string): ProgressStore | undefined {
    return this.stores.get(zone);
  }

  async close(): Promise<void> {
    for (const store of this.stores.values()) await store.close();
  }
}
