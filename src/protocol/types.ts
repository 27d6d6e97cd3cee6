/** Wire-level MQTT packet types for MQTT 3.1 (level 3), 3.1.1 (level 4) and 5.0 (level 5). */

/** Protocol level carried in CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0. */
export type ProtocolVersion = 3 | 4 | 5;

/** Quality of service of a PUBLISH or a subscription. */
export type QoS = 0 | 1 | 2;

/** Control packet type numbers (first nibble of the fixed header). */
export const PacketTypeCode = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
} as const;

/** Name of a control packet type. */
export type PacketTypeName = keyof typeof PacketTypeCode;

/** One MQTT 5 user property (name, value); order and duplicates are significant [MQTT-3.3.2-18]. */
export type UserProperty = readonly [name: string, value: string];

/**
 * MQTT 5 properties. Every packet carries the subset the spec allows; the codec rejects
 * a property that is not allowed on a packet or that appears twice when it may appear once.
 */
export interface Properties {
  payloadFormatIndicator?: 0 | 1; // 0x01
  messageExpiryInterval?: number; // 0x02
  contentType?: string; // 0x03
  responseTopic?: string; // 0x08
  correlationData?: Buffer; // 0x09
  subscriptionIdentifiers?: number[]; // 0x0B (several on PUBLISH, one on SUBSCRIBE)
  sessionExpiryInterval?: number; // 0x11
  assignedClientIdentifier?: string; // 0x12
  serverKeepAlive?: number; // 0x13
  authenticationMethod?: string; // 0x15
  authenticationData?: Buffer; // 0x16
  requestProblemInformation?: 0 | 1; // 0x17
  willDelayInterval?: number; // 0x18
  requestResponseInformation?: 0 | 1; // 0x19
  responseInformation?: string; // 0x1A
  serverReference?: string; // 0x1C
  reasonString?: string; // 0x1F
  receiveMaximum?: number; // 0x21
  topicAliasMaximum?: number; // 0x22
  topicAlias?: number; // 0x23
  maximumQoS?: 0 | 1; // 0x24
  retainAvailable?: 0 | 1; // 0x25
  userProperties?: UserProperty[]; // 0x26
  maximumPacketSize?: number; // 0x27
  wildcardSubscriptionAvailable?: 0 | 1; // 0x28
  subscriptionIdentifiersAvailable?: 0 | 1; // 0x29
  sharedSubscriptionAvailable?: 0 | 1; // 0x2A
}

/** Will message carried in CONNECT. */
export interface Will {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 will properties (will delay interval, message expiry, content type, …). */
  properties?: Properties;
}

/** CONNECT: the first packet a client sends. */
export interface ConnectPacket {
  type: 'connect';
  /** "MQTT" for levels 4 and 5, "MQIsdp" for level 3. */
  protocolName: string;
  protocolVersion: ProtocolVersion;
  /** Clean Session (3.1.x) or Clean Start (5.0). */
  clean: boolean;
  /** Keep alive in seconds; 0 disables it. */
  keepalive: number;
  clientId: string;
  will?: Will;
  username?: string;
  password?: Buffer;
  properties?: Properties;
  /** Sent only: Mosquitto's bridge flag (its `try_private`), the top bit of the protocol level (0x84 for 3.1.1). */
  bridge?: boolean;
}

/** CONNACK: the server's answer to CONNECT. */
export interface ConnackPacket {
  type: 'connack';
  sessionPresent: boolean;
  /** Return code (3.1.x, 0-5) or reason code (5.0). */
  reasonCode: number;
  properties?: Properties;
}

/** PUBLISH: an application message in either direction. */
export interface PublishPacket {
  type: 'publish';
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present exactly when qos > 0. */
  packetId?: number;
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL or PUBCOMP: acknowledgements keyed by packet id. */
export interface AckPacket<T extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'> {
  type: T;
  packetId: number;
  /** MQTT 5 reason code; absent (or 0) means success. */
  reasonCode?: number;
  properties?: Properties;
}

/** PUBACK (QoS 1 acknowledgement). */
export type PubackPacket = AckPacket<'puback'>;
/** PUBREC (QoS 2, part 1). */
export type PubrecPacket = AckPacket<'pubrec'>;
/** PUBREL (QoS 2, part 2). */
export type PubrelPacket = AckPacket<'pubrel'>;
/** PUBCOMP (QoS 2, part 3). */
export type PubcompPacket = AckPacket<'pubcomp'>;

/** One topic filter requested in SUBSCRIBE, with its options. */
export interface SubscriptionRequest {
  topicFilter: string;
  qos: QoS;
  /** MQTT 5 subscription options; false / 0 for older versions. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

/** SUBSCRIBE. */
export interface SubscribePacket {
  type: 'subscribe';
  packetId: number;
  subscriptions: SubscriptionRequest[];
  properties?: Properties;
}

/** SUBACK: one return / reason code per requested filter, in order. */
export interface SubackPacket {
  type: 'suback';
  packetId: number;
  reasonCodes: number[];
  properties?: Properties;
}

/** UNSUBSCRIBE. */
export interface UnsubscribePacket {
  type: 'unsubscribe';
  packetId: number;
  topicFilters: string[];
  properties?: Properties;
}

/** UNSUBACK (reason codes only in MQTT 5). */
export interface UnsubackPacket {
  type: 'unsuback';
  packetId: number;
  reasonCodes?: number[];
  properties?: Properties;
}

/** PINGREQ. */
export interface PingreqPacket {
  type: 'pingreq';
}

/** PINGRESP. */
export interface PingrespPacket {
  type: 'pingresp';
}

/** DISCONNECT (reason code and properties only in MQTT 5). */
export interface DisconnectPacket {
  type: 'disconnect';
  reasonCode?: number;
  properties?: Properties;
}

/** AUTH (MQTT 5 only). */
export interface AuthPacket {
  type: 'auth';
  reasonCode?: number;
  properties?: Properties;
}

/** Any MQTT control packet, discriminated on `type`. */
export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;
