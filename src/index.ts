export { createGateway, type Gateway, type GatewayOptions } from './gateway';
export { parseConfig, loadConfigFile, ConfigError } from './config/parse';
export { resolveConfig } from './config/resolve';
export { embeddedDefaults } from './config/defaults';
export type { GatewayConfig, LocationConfig } from './config/types';
export type { SessionStore, SessionRecord, Locker, Lease } from './state/types';
export { FileSessionStore } from './state/file-session-store';
export { MemorySessionStore } from './state/memory-session-store';
export { MemoryLocker } from './state/memory-locker';
