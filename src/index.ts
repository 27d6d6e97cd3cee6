/** Starling: an MQTT broker for Node.js. */
export { startServer, type ServerOptions, type StarlingServer } from './server.js';
export { Broker, type BrokerInit } from './broker/broker.js';
export type { BrokerOptions } from './broker/options.js';
export type {
  BrokerPlugin,
  ClientIdentity,
  AuthenticateRequest,
  AuthenticateResult,
  AuthenticateAcceptance,
  AuthenticateRefusal,
  AuthorizeResult,
} from './broker/hooks.js';
export type { ConnectionInfo } from './broker/connection.js';
export type { Logger } from './broker/logger.js';
export type { Message, PublishInput } from './model/message.js';
export type { Subscription } from './model/subscription.js';
export { MemoryPersistence } from './persistence/memory.js';
export { LmdbPersistence, StoreFormatError, FORMAT_VERSION } from './persistence/lmdb.js';
export type { Persistence, StoreOp, StoredState } from './persistence/types.js';
export { loadConfig, DEFAULT_CONFIG, ConfigError, type StarlingConfig, type LimitsConfig, type FeaturesConfig, type HttpAuthConfig, type WebhookConfig } from './config/config.js';
