/** Public API of the Starling MQTT client (`starling-mqtt/client`): MQTT 3.1 / 3.1.1 / 5.0 over TCP, TLS and WebSocket. */
export {
  MqttClient,
  connect,
  type ClientEvents,
  type ClientState,
  type ConnackInfo,
  type PublishOptions,
  type SubscribeOptions,
  type UnsubscribeResult,
} from './client.js';
export {
  ClientClosedError,
  ConnectionError,
  ConnectionRefusedError,
  InvalidArgumentError,
  KeepAliveTimeoutError,
  MqttClientError,
  ProtocolError,
  RequestRejectedError,
  ServerDisconnectError,
  TimeoutError,
  reasonName,
} from './errors.js';
export { parseUrl, randomClientId, resolveOptions, type ConnectOptions, type ReconnectOptions, type ResolvedOptions, type TlsOptions, type TransportProtocol, type WillOptions } from './options.js';
export type { PublishResult } from './session.js';
export { Subscription, filterMatches, type Message } from './subscription.js';
export type { Properties, ProtocolVersion, QoS, SubscriptionRequest, UserProperty } from '../protocol/index.js';
