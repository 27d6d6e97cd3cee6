/** Public API of the Starling MQTT codec (`starling-mqtt/protocol`): pure, Buffer in, Buffer out. */
export type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  PacketTypeName,
  PingreqPacket,
  PingrespPacket,
  Properties,
  ProtocolVersion,
  PubackPacket,
  PubcompPacket,
  PublishPacket,
  PubrecPacket,
  PubrelPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  SubscriptionRequest,
  UnsubackPacket,
  UnsubscribePacket,
  UserProperty,
  Will,
} from './types.js';
export { PacketTypeCode } from './types.js';
export {
  MalformedPacketError,
  MqttError,
  PacketTooLargeError,
  ProtocolViolationError,
  UnsupportedProtocolVersionError,
} from './errors.js';
export { ConnackReturnCode, ReasonCode, SUBACK_FAILURE } from './reason-codes.js';
export { MAX_PACKET_SIZE, PacketDecoder, decodePacket, type PacketDecoderOptions } from './decoder.js';
export { encodePacket, encodePublish, publishPacketIdOffset, setDupFlag } from './encoder.js';
export { PROPERTY_TABLE, PropertyContext, type PropertyDefinition } from './properties.js';
export {
  isValidTopicFilter,
  isValidTopicName,
  parseSharedSubscription,
  topicMatches,
  validateTopicFilter,
  validateTopicName,
} from './topic.js';
