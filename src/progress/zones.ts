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
  /** What each zone was made from: a reload keeps a zone whose place and size stay. */
  private readonly made = new Map<string, string>();

  /** `previous`: the zones before a reload; a zone of the same name, place and size is kept with its entries. */
  constructor(config: GatewayConfig, state: StateBackends, previous?: ProgressZones) {
    for (const zone of config.progressZones) {
      const identity = `${zone.stateRedis ?? ''}\0${zone.size}`;
      const kept = previous?.made.get(zone.name) === identity ? previous.stores.get(zone.name) : undefined;
      this.stores.set(
        zone.name,
        kept ??
          (zone.stateRedis ? new RedisProgressStore(state.redisClient(zone.stateRedis), zone.name, state.prefix()) : new MemoryProgressStore(zone.name, zone.size)),
      );
      this.made.set(zone.name, identity);
    }
  }

  /** The zones of `previous` that this one does not keep (closed once their requests are over). */
  dropped(previous: ProgressZones): ProgressStore[] {
    return [...previous.stores.values()].filter((store) => ![...this.stores.values()].includes(store));
  }

  get(zone: string): ProgressStore | undefined {
    return this.stores.get(zone);
  }

  async close(): Promise<void> {
    for (const store of this.stores.values()) await store.close();
  }
}
