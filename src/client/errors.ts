/** Errors of the MQTT client: one class per failure, each with a stable `code` (listed in docs/cli.md). */
import type { Properties, ProtocolVersion } from '../protocol/index.js';

const CONNACK_311_NAMES: Record<number, string> = {
  0x00: 'connection accepted',
  0x01: 'unacceptable protocol version',
  0x02: 'identifier rejected',
  0x03: 'server unavailable',
  0x04: 'bad user name or password',
  0x05: 'not authorized',
};

const REASON_NAMES: Record<number, string> = {
  0x00: 'success',
  0x01: 'granted QoS 1',
  0x02: 'granted QoS 2',
  0x04: 'disconnect with will message',
  0x10: 'no matching subscribers',
  0x11: 'no subscription existed',
  0x18: 'continue authentication',
  0x19: 're-authenticate',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x92: 'packet identifier not found',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa0: 'maximum connect time',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
};

/** A reason or return code in words, e.g. 0x86 → "bad user name or password"; 3.1.x CONNACK codes differ. */
export function reasonName(code: number, version: ProtocolVersion = 5, connack = false): string {
  const name = connack && version !== 5 ? CONNACK_311_NAMES[code] : REASON_NAMES[code];
  return name ?? `unknown reason 0x${code.toString(16).padStart(2, '0')}`;
}

/** Base of every client error; `code` is stable and documented. */
export class MqttClientError extends Error {
  /** Stable identifier such as `ERR_CONNECTION_REFUSED`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The server answered CONNECT with a refusal (CONNACK return / reason code not 0). */
export class ConnectionRefusedError extends MqttClientError {
  /** CONNACK return code (3.1.x) or reason code (5.0). */
  readonly reasonCode: number;
  /** The code in words, e.g. "not authorized". */
  readonly reasonName: string;
  /** CONNACK properties (MQTT 5), e.g. a reason string. */
  readonly properties: Properties | undefined;

  constructor(reasonCode: number, version: ProtocolVersion, properties?: Properties) {
    const words = reasonName(reasonCode, version, true);
    const hex = `0x${reasonCode.toString(16).padStart(2, '0')}`;
    const detail = properties?.reasonString === undefined ? '' : ` (${properties.reasonString})`;
    super('ERR_CONNECTION_REFUSED', `connection refused: ${words} [CONNACK ${hex}]${detail}`);
    this.reasonCode = reasonCode;
    this.reasonName = words;
    this.properties = properties;
  }
}

/** The server sent DISCONNECT (MQTT 5) with a reason code. */
export class ServerDisconnectError extends MqttClientError {
  readonly reasonCode: number;
  readonly reasonName: string;
  readonly properties: Properties | undefined;

  constructor(reasonCode: number, properties?: Properties) {
    const words = reasonName(reasonCode);
    const detail = properties?.reasonString === undefined ? '' : ` (${properties.reasonString})`;
    super('ERR_SERVER_DISCONNECT', `server disconnected: ${words} [0x${reasonCode.toString(16).padStart(2, '0')}]${detail}`);
    this.reasonCode = reasonCode;
    this.reasonName = words;
    this.properties = properties;
  }
}

/** The network connection could not be opened or was lost (socket, TLS or WebSocket error). */
export class ConnectionError extends MqttClientError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_CONNECTION', message, options);
  }
}

/** No answer in time: CONNACK (connect timeout) or any acknowledgement awaited with a timeout. */
export class TimeoutError extends MqttClientError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

/** The server did not answer PINGREQ within the keep-alive window; the connection is dropped. */
export class KeepAliveTimeoutError extends MqttClientError {
  constructor(seconds: number) {
    super('ERR_KEEPALIVE_TIMEOUT', `no PINGRESP from the server within ${seconds} s: connection presumed dead`);
  }
}

/** The server answered a PUBLISH, SUBSCRIBE or UNSUBSCRIBE with a failure reason code (≥ 0x80). */
export class RequestRejectedError extends MqttClientError {
  readonly reasonCode: number;
  readonly reasonName: string;
  readonly properties: Properties | undefined;

  constructor(what: string, reasonCode: number, properties?: Properties) {
    const words = reasonName(reasonCode);
    super('ERR_REJECTED', `${what} rejected: ${words} [0x${reasonCode.toString(16).padStart(2, '0')}]`);
    this.reasonCode = reasonCode;
    this.reasonName = words;
    this.properties = properties;
  }
}

/** The client was closed (by `end()` or after a fatal error) while the operation was pending. */
export class ClientClosedError extends MqttClientError {
  constructor(message = 'client closed') {
    super('ERR_CLIENT_CLOSED', message);
  }
}

/** Invalid arguments: a bad URL, topic, QoS or option. */
export class InvalidArgumentError extends MqttClientError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

/** The server broke the protocol (malformed packet, unknown packet id …); the connection is dropped. */
export class ProtocolError extends MqttClientError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_PROTOCOL', message, options);
  }
}
