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
  /** What each zone was made from: a reload keeps a zone whose place and size stay. */
  private readonly made = new Map<string, string>();

  /** `previous`: the zones before a reload; a zone of the same name, place and size is kept with its entries. */
  constructor(config: GatewayConfig, state: StateBackends, previous?: ProgressZones) {
    for (const zone of config.progressZones) {
      const identity = `${zone.stateRedis ?? ''}\0${zone.size}`;
      const kept = previous?.made.get(zone.name) === identity ? previous.zones.get(zone.name) : undefined;
      this.zones.set(
        zone.name,
        kept ??
          (zone.stateRedis ? new RedisProgressZone(state.redisClient(zone.stateRedis), zone.name, state.prefix()) : new MemoryProgressZone(zone.name, zone.size)),
      );
      this.made.set(zone.name, identity);
    }
  }

  /** The zones of `previous` that this one does not keep (the gateway closes them when it closes: requests may still use them). */
  dropped(previous: ProgressZones): ProgressZone[] {
    return [...previous.zones.values()].filter((zone) => ![...this.zones.values()].includes(zone));
  }

  get(zone: string): ProgressZone | undefined {
    return this.zones.get(zone);
  }

  async close(): Promise<void> {
    for (const zone of this.zones.values()) await zone.close();
  }
}
