/** Inbound CONNECT: protocol checks, client id rules, limits and authentication, up to the decision. */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { ProtocolViolationError } from '../../protocol/errors.js';
import type { ConnectPacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { Core } from '../context.js';
import type { AuthenticateOutcome, AuthenticateRefusal, AuthenticateRequest, Maybe } from '../hooks.js';
import { ConnectRefusal } from '../outcomes.js';
import { beginEnhancedAuth, connackAuthProperties } from './auth.js';
import { acceptConnect } from './connect-accept.js';

/** Handles CONNECT: protocol checks, client id rules, authentication, then session set-up. */
export function handleConnect(core: Core, conn: Connection, packet: ConnectPacket): void {
  if (conn.state !== 'awaiting-connect') {
    // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
    throw new ProtocolViolationError('second CONNECT on one connection [MQTT-3.1.0-2]');
  }
  const v5 = packet.protocolVersion === 5;
  const options = core.options;
  let clientId = packet.clientId;
  let assigned = false;
  conn.connecting(packet, clientId);
  if (clientId.length === 0) {
    if (packet.protocolVersion === 3) {
      refuseConnect(core, conn, packet, ConnectRefusal.identifier, 'MQTT 3.1 requires a client identifier');
      return;
    }
    if (!packet.clean && !v5) {
      // [MQTT-3.1.3-8] an empty client id with CleanSession=0 is rejected with return code 2.
      refuseConnect(core, conn, packet, ConnectRefusal.identifier, 'empty client identifier with CleanSession=0 [MQTT-3.1.3-8]');
      return;
    }
    // [MQTT-3.1.3-6] (3.1.1) [MQTT-3.1.3-6] (5.0) the server assigns a unique identifier.
    clientId = assignClientId(core);
    assigned = true;
    conn.connecting(packet, clientId);
  } else if (Buffer.byteLength(clientId) > options.maxClientIdLength) {
    refuseConnect(core, conn, packet, ConnectRefusal.identifier, `client identifier longer than ${options.maxClientIdLength} bytes`);
    return;
  }
  const clients = core.clients;
  // A worker group is one broker: its limits count the other workers' clients too.
  const others = core.cluster?.bus.othersLoad;
  // In a worker group the client may be connected to (or its session held by) another worker: a
  // takeover or a resumption is no new connection or session, which is known once the claim is done,
  // so the group's limits are checked then (acceptConnect).
  if (others === undefined && connectionLimitReached(core, clientId)) {
    refuseConnect(core, conn, packet, ConnectRefusal.busy, `connection limit of ${options.maxConnections} reached`);
    return;
  }
  const listener = conn.info.listener;
  const listenerLimit = options.maxConnectionsPerListener[listener];
  if (listenerLimit !== undefined && clients.onlineOn(listener) >= listenerLimit && clients.get(clientId)?.info.listener !== listener) {
    refuseConnect(core, conn, packet, ConnectRefusal.busy, `connection limit of ${listenerLimit} on listener "${listener}" reached`);
    return;
  }
  if (others === undefined && sessionLimitReached(core, clientId)) {
    refuseConnect(core, conn, packet, ConnectRefusal.quota, `session limit of ${options.maxSessions} reached`);
    return;
  }
  if (v5 && !checkV5Connect(core, conn, packet)) return;
  const request: AuthenticateRequest = {
    clientId,
    username: packet.username,
    password: packet.password,
    remoteAddress: conn.info.remoteAddress,
    listener,
    protocolVersion: packet.protocolVersion,
    ...(conn.info.certificateSubject === undefined ? {} : { certificateSubject: conn.info.certificateSubject }),
  };
  const method = v5 ? packet.properties?.authenticationMethod : undefined;
  if (method !== undefined) {
    enhanced(core, conn, packet, request, method, assigned);
    return;
  }
  let outcome: Maybe<AuthenticateOutcome>;
  try {
    outcome = core.hooks.authenticate(request);
  } catch (error) {
    authFailed(core, conn, packet, error);
    return;
  }
  if (!(outcome instanceof Promise)) {
    decide(core, conn, packet, outcome, assigned);
    return;
  }
  // Packets sent right after CONNECT wait until the decision [MQTT-3.1.4-5 allows only CONNACK first].
  conn.authenticating();
  conn.holdPackets();
  outcome.then(
    (decision) => {
      if (conn.state !== 'authenticating') return;
      decide(core, conn, packet, decision, assigned);
      conn.releaseHold();
    },
    (error: unknown) => {
      if (conn.state !== 'authenticating') return;
      authFailed(core, conn, packet, error);
    },
  );
}

/**
 * MQTT 5 enhanced authentication at CONNECT: the plugin for the method runs its exchange (AUTH
 * packets); the client may send nothing else until CONNACK [MQTT-3.1.2-30].
 */
function enhanced(core: Core, conn: Connection, packet: ConnectPacket, request: AuthenticateRequest, method: string, assigned: boolean): void {
  const plugin = core.hooks.enhancedAuthenticator(method)!;
  conn.authenticating();
  beginEnhancedAuth(core, conn, plugin, method, request, false, packet.properties?.authenticationData, (result) => {
    if (typeof result === 'object') {
      acceptConnect(core, conn, packet, { assigned, username: result.username ?? packet.username, attributes: result.attributes, authMethod: method, authProperties: connackAuthProperties(packet, result.data) });
      return;
    }
    core.stats.authFailures++;
    refuseFor(core, conn, packet, result, {
      'bad-credentials': `enhanced authentication (${method}) failed`,
      'not-authorized': `enhanced authentication (${method}): not authorized`,
      'server-unavailable': `enhanced authentication (${method}) unavailable`,
      banned: 'banned',
    });
  });
}

/** MQTT 5 CONNECT checks that can refuse the connection; returns false after refusing. */
function checkV5Connect(core: Core, conn: Connection, packet: ConnectPacket): boolean {
  const options = core.options;
  const method = packet.properties?.authenticationMethod;
  if (method !== undefined && core.hooks.enhancedAuthenticator(method) === undefined) {
    // [MQTT-4.12.0-1] no plugin handles this Authentication Method: CONNACK 0x8C.
    refuseConnect(core, conn, packet, ConnectRefusal.authMethod, `authentication method "${method}" is not supported`);
    return false;
  }
  const will = packet.will;
  if (will === undefined) return true;
  if (will.qos > options.maxQoS) {
    // [MQTT-3.2.2-12] a will QoS above the maximum QoS is refused with 0x9B.
    refuseConnect(core, conn, packet, ConnectRefusal.qos, `will QoS ${will.qos} above maximum QoS ${options.maxQoS}`);
    return false;
  }
  if (will.retain && !options.retainAvailable) {
    // [MQTT-3.2.2-13] a retained will when retain is not available is refused with 0x9A.
    refuseConnect(core, conn, packet, ConnectRefusal.retain, 'retained will, but retained messages are not available');
    return false;
  }
  if (options.validateUtf8Payload && will.properties?.payloadFormatIndicator === 1 && !isUtf8(will.payload)) {
    refuseConnect(core, conn, packet, ConnectRefusal.payloadFormat, 'will payload declared UTF-8 is not valid UTF-8');
    return false;
  }
  return true;
}

function decide(core: Core, conn: Connection, packet: ConnectPacket, outcome: AuthenticateOutcome, assigned: boolean): void {
  if (outcome.accept) {
    acceptConnect(core, conn, packet, { assigned, username: outcome.username, attributes: outcome.attributes, authMethod: undefined, authProperties: undefined });
    return;
  }
  if (outcome.refusal !== 'server-unavailable' && outcome.refusal !== 'banned') core.stats.authFailures++;
  refuseFor(core, conn, packet, outcome.refusal, { 'bad-credentials': 'bad user name or password', 'not-authorized': 'not authorized', 'server-unavailable': 'authentication service unavailable', banned: 'banned' });
}

/** The CONNACK of each refusal an authentication plugin can give. */
const AUTH_REFUSALS = {
  'bad-credentials': ConnectRefusal.credentials,
  'not-authorized': ConnectRefusal.notAuthorized,
  'server-unavailable': ConnectRefusal.unavailable,
  banned: ConnectRefusal.banned,
} as const satisfies Record<AuthenticateRefusal, ConnectRefusal>;

/** Refuses as an authentication plugin decided, with the words for each refusal. */
function refuseFor(core: Core, conn: Connection, packet: ConnectPacket, refusal: AuthenticateRefusal, words: Record<AuthenticateRefusal, string>): void {
  refuseConnect(core, conn, packet, AUTH_REFUSALS[refusal], words[refusal]);
}

function authFailed(core: Core, conn: Connection, packet: ConnectPacket, error: unknown): void {
  core.logger.error({ clientId: conn.clientId, err: error }, 'authentication hook failed');
  refuseConnect(core, conn, packet, ConnectRefusal.unavailable, 'authentication hook failed');
}

/** A CONNECT for `clientId` would be a connection beyond `maxConnections` (counting the other workers' in a group). */
export function connectionLimitReached(core: Core, clientId: string): boolean {
  const others = core.cluster?.bus.othersLoad;
  return core.clients.onlineCount + (others?.connections ?? 0) >= core.options.maxConnections && core.clients.get(clientId) === undefined;
}

/** A CONNECT for `clientId` would need a new session beyond `maxSessions` (counting the other workers' in a group). */
export function sessionLimitReached(core: Core, clientId: string): boolean {
  const others = core.cluster?.bus.othersLoad;
  return core.sessions.size + (others?.sessions ?? 0) >= core.options.maxSessions && core.sessions.get(clientId) === undefined;
}

/** Sends a refusing CONNACK and closes [MQTT-3.2.2-5]: session present is 0 on any refusal [MQTT-3.2.2-4]. */
export function refuseConnect(core: Core, conn: Connection, packet: ConnectPacket, refusal: ConnectRefusal, why: string): void {
  core.stats.connectionsRefused++;
  const reasonCode = packet.protocolVersion === 5 ? refusal.v5 : refusal.v3;
  core.logger.info({ clientId: packet.clientId || undefined, username: packet.username, remote: conn.info.remoteAddress, reasonCode }, `connection refused: ${why}`);
  // MQTT 5 refusals carry the reason in words (Reason String, allowed on CONNACK [MQTT-3.1.2-29]).
  if (packet.protocolVersion === 5) conn.send({ type: 'connack', sessionPresent: false, reasonCode, properties: { reasonString: why } });
  else conn.send({ type: 'connack', sessionPresent: false, reasonCode });
  conn.close('connect-refused');
}

let assignedCounter = 0;
const assignPrefix = `starling-${randomBytes(4).toString('hex')}-`;

/** A client id unique to this broker [MQTT-3.1.3-6]. */
function assignClientId(core: Core): string {
  let id: string;
  do {
    assignedCounter++;
    id = `${assignPrefix}${assignedCounter.toString(36)}`;
  } while (core.sessions.get(id) !== undefined || core.clients.get(id) !== undefined);
  return id;
}
