/** Starling: an MQTT broker for Node.js. */
export { startServer, type ServerOptions, type StarlingServer } from './server.js';
export { Broker, type BrokerInit } from './broker/broker.js';
export type { BrokerOptions, AuthenticateRequest, AuthenticateResult } from './broker/options.js';
export type { ConnectionInfo } from './broker/connection.js';
export type { Logger } from './broker/logger.js';
export type { Message, PublishInput } from './model/message.js';
export type { Subscription } from './model/subscription.js';
export { loadConfig, DEFAULT_CONFIG, ConfigError, type StarlingConfig, type LimitsConfig } from './config/config.js';
