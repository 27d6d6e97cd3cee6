/** The one table of what the broker answers when it refuses or ends something: MQTT 3.1.x return code, MQTT 5 reason code, and the words logged (and sent as an MQTT 5 Reason String). */
import { ConnackReturnCode, ReasonCode, SUBACK_FAILURE } from '../protocol/reason-codes.js';

/** An answer in both protocol families. */
export interface Outcome {
  /** MQTT 3.1 / 3.1.1 code (CONNACK return code, SUBACK 0x80), or 0 where 3.1.x can only acknowledge and drop. */
  readonly v3: number;
  /** MQTT 5 reason code. */
  readonly v5: number;
}

/** Why a CONNECT is refused [MQTT-3.2.2-5]: CONNACK with these codes, then the connection closes. */
export const ConnectRefusal = {
  identifier: { v3: ConnackReturnCode.identifierRejected, v5: ReasonCode.clientIdentifierNotValid },
  unavailable: { v3: ConnackReturnCode.serverUnavailable, v5: ReasonCode.serverUnavailable },
  busy: { v3: ConnackReturnCode.serverUnavailable, v5: ReasonCode.serverBusy },
  quota: { v3: ConnackReturnCode.serverUnavailable, v5: ReasonCode.quotaExceeded },
  credentials: { v3: ConnackReturnCode.badUsernameOrPassword, v5: ReasonCode.badUserNameOrPassword },
  notAuthorized: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.notAuthorized },
  banned: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.banned },
  authMethod: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.badAuthenticationMethod },
  qos: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.qosNotSupported },
  retain: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.retainNotSupported },
  payloadFormat: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.payloadFormatInvalid },
  protocolVersion: { v3: ConnackReturnCode.unacceptableProtocolVersion, v5: ReasonCode.unsupportedProtocolVersion },
} as const satisfies Record<string, Outcome>;
/** One kind of CONNECT refusal. */
export type ConnectRefusal = (typeof ConnectRefusal)[keyof typeof ConnectRefusal];

/**
 * Why an accepted-looking PUBLISH is not routed: MQTT 5 says so in PUBACK/PUBREC; MQTT 3.1.1 has no
 * way to, so the message is acknowledged (v3 = 0) and dropped, and the log says why.
 */
export const PublishRefusal = {
  notAuthorized: { v3: 0, v5: ReasonCode.notAuthorized },
  topicBeyondLimits: { v3: 0, v5: ReasonCode.topicNameInvalid },
  payloadFormat: { v3: 0, v5: ReasonCode.payloadFormatInvalid },
} as const satisfies Record<string, Outcome>;

/** SUBACK for a refused subscription: the MQTT 5 reason code, or 0x80 in 3.1.1 [MQTT-3.9.3-2]. */
export function subackCode(version: 3 | 4 | 5, reasonCode: number): number {
  return version === 5 ? reasonCode : SUBACK_FAILURE;
}

/** Why a connection ended; named in logs. */
export type CloseReason =
  | 'client-disconnect'
  | 'client-disconnect-with-will'
  | 'socket-closed'
  | 'socket-error'
  | 'protocol-error'
  | 'keep-alive-timeout'
  | 'connect-timeout'
  | 'session-taken-over'
  | 'connect-refused'
  | 'server-shutdown'
  | 'administrative'
  | 'store-failure';

/**
 * The reason code of the DISCONNECT an MQTT 5 client gets when the server closes for this reason
 * (only after a successful CONNACK [MQTT-3.14.0-1]); none: the socket just closes.
 */
export const CLOSE_REASON_CODES: Readonly<Partial<Record<CloseReason, number>>> = {
  'keep-alive-timeout': ReasonCode.keepAliveTimeout,
  'session-taken-over': ReasonCode.sessionTakenOver,
  'server-shutdown': ReasonCode.serverShuttingDown,
  administrative: ReasonCode.administrativeAction,
  'protocol-error': ReasonCode.protocolError,
  'store-failure': ReasonCode.unspecifiedError,
};

/** The close reasons after which the will is not published: a normal DISCONNECT [MQTT-3.14.4-3]. */
export function keepsWill(reason: CloseReason): boolean {
  return reason === 'client-disconnect';
}
