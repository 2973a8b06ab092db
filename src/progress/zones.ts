/**
 * The `upload_progress` zones of a configuration, chosen at start-up: in process, or in the Redis
 * of the locations that use the zone (`upload_state_redis`), shared by every gateway instance.
 */
import type { GatewayConfig } from '../config/types';
import type { StateBackends } from '../state/backends';
import { MemoryProgressZone } from './memory-zone';
import { RedisProgressZone } from './redis-zone';
import type { ProgressZone } from './types';

export class ProgressZones {
  private readonly zones = new Map<string, ProgressZone>();

  constructor(config: GatewayConfig, state: StateBackends) {
    for (const zone of config.progressZones) {
      this.zones.set(
        zone.name,
        zone.stateRedis ? new RedisProgressZone(state.redisClient(zone.stateRedis), zone.name, state.prefix()) : new MemoryProgressZone(zone.name, zone.size),
      );
    }
  }

  get(zone: string): ProgressZone | undefined {
    return this.zones.get(zone);
  }

  async close(): Promise<void> {
    for (const zone of this.zones.values()) await zone.close();
  }
}
