/** The MqttError tree: every protocol error with its stable code and the MQTT 5 reason code it maps to. */
import { ReasonCode } from './reason-codes.js';

/** Base of every protocol error: a stable `code` and the MQTT 5 reason code it maps to. */
export class MqttError extends Error {
  /** Stable, documented identifier (see docs/errors.md). */
  readonly code: string;
  /** MQTT 5 reason code used for DISCONNECT / acks; 3.1.x closes the connection instead. */
  readonly reasonCode: number;

  constructor(code: string, reasonCode: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.reasonCode = reasonCode;
  }
}

/** Bytes that do not form a valid packet (reason 0x81). */
export class MalformedPacketError extends MqttError {
  constructor(message: string) {
    super('ERR_MALFORMED_PACKET', ReasonCode.malformedPacket, message);
  }
}

/** A well-formed packet that breaks a protocol rule (reason 0x82). */
export class ProtocolViolationError extends MqttError {
  constructor(message: string, reasonCode: number = ReasonCode.protocolError) {
    super('ERR_PROTOCOL_VIOLATION', reasonCode, message);
  }
}

/** A packet larger than the maximum packet size (reason 0x95). */
export class PacketTooLargeError extends MqttError {
  constructor(size: number, max: number) {
    super('ERR_PACKET_TOO_LARGE', ReasonCode.packetTooLarge, `packet of ${size} bytes exceeds maximum of ${max}`);
  }
}

/** CONNECT with a protocol name or level this server does not speak (CONNACK 0x01 / 0x84). */
export class UnsupportedProtocolVersionError extends MqttError {
  /** The protocol level the client asked for. */
  readonly requestedVersion: number;
  /** True when the protocol name was recognised (so a CONNACK can be sent before closing). */
  readonly nameRecognised: boolean;

  constructor(requestedVersion: number, nameRecognised: boolean, message: string) {
    super('ERR_UNSUPPORTED_PROTOCOL_VERSION', ReasonCode.unsupportedProtocolVersion, message);
    this.requestedVersion = requestedVersion;
    this.nameRecognised = nameRecognised;
  }
}
