import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { ConnackReturnCode, ReasonCode } from '../../protocol/reason-codes.js';
import { ProtocolViolationError } from '../../protocol/errors.js';
import type { ConnectPacket, Properties } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import type { AuthenticateOutcome, ClientIdentity, Maybe } from '../hooks.js';
import { beginEnhancedAuth, connackAuthProperties } from './auth.js';
import { NEVER_EXPIRES } from '../session.js';

/** A refusal, as a 3.1.x return code and an MQTT 5 reason code. */
interface Refusal {
  v3: number;
  v5: number;
}

const REFUSE = {
  identifier: { v3: ConnackReturnCode.identifierRejected, v5: ReasonCode.clientIdentifierNotValid },
  unavailable: { v3: ConnackReturnCode.serverUnavailable, v5: ReasonCode.serverUnavailable },
  busy: { v3: ConnackReturnCode.serverUnavailable, v5: ReasonCode.serverBusy },
  quota: { v3: ConnackReturnCode.serverUnavailable, v5: ReasonCode.quotaExceeded },
  credentials: { v3: ConnackReturnCode.badUsernameOrPassword, v5: ReasonCode.badUserNameOrPassword },
  notAuthorized: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.notAuthorized },
  authMethod: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.badAuthenticationMethod },
  qos: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.qosNotSupported },
  retain: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.retainNotSupported },
  payloadFormat: { v3: ConnackReturnCode.notAuthorized, v5: ReasonCode.payloadFormatInvalid },
} as const satisfies Record<string, Refusal>;

/** Handles CONNECT: protocol checks, client id rules, authentication, then session set-up. */
export function handleConnect(ctx: BrokerContext, conn: Connection, packet: ConnectPacket): void {
  if (conn.state !== 'awaiting-connect') {
    // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
    throw new ProtocolViolationError('second CONNECT on one connection [MQTT-3.1.0-2]');
  }
  conn.version = packet.protocolVersion;
  conn.username = packet.username;
  const v5 = packet.protocolVersion === 5;
  // The client's limit applies to every packet we send, the CONNACK included [MQTT-3.1.2-24].
  if (v5) conn.clientMaxPacketSize = packet.properties?.maximumPacketSize ?? Infinity;

  let clientId = packet.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    if (packet.protocolVersion === 3) {
      refuse(ctx, conn, packet, REFUSE.identifier, 'MQTT 3.1 requires a client identifier');
      return;
    }
    if (!packet.clean && !v5) {
      // [MQTT-3.1.3-8] an empty client id with CleanSession=0 is rejected with return code 2.
      refuse(ctx, conn, packet, REFUSE.identifier, 'empty client identifier with CleanSession=0 [MQTT-3.1.3-8]');
      return;
    }
    // [MQTT-3.1.3-6] (3.1.1) [MQTT-3.1.3-6] (5.0) the server assigns a unique identifier.
    clientId = assignClientId(ctx);
    assigned = true;
  } else if (Buffer.byteLength(clientId) > ctx.options.maxClientIdLength) {
    refuse(ctx, conn, packet, REFUSE.identifier, `client identifier longer than ${ctx.options.maxClientIdLength} bytes`);
    return;
  }
  conn.clientId = clientId;

  if (ctx.online.size >= ctx.options.maxConnections && ctx.online.get(clientId) === undefined) {
    refuse(ctx, conn, packet, REFUSE.busy, `connection limit of ${ctx.options.maxConnections} reached`);
    return;
  }
  const listenerLimit = ctx.options.maxConnectionsPerListener[conn.info.listener];
  if (listenerLimit !== undefined && (ctx.onlinePerListener.get(conn.info.listener) ?? 0) >= listenerLimit && ctx.online.get(clientId)?.info.listener !== conn.info.listener) {
    refuse(ctx, conn, packet, REFUSE.busy, `connection limit of ${listenerLimit} on listener "${conn.info.listener}" reached`);
    return;
  }
  if (ctx.sessions.size >= ctx.options.maxSessions && ctx.sessions.get(clientId) === undefined) {
    refuse(ctx, conn, packet, REFUSE.quota, `session limit of ${ctx.options.maxSessions} reached`);
    return;
  }
  if (v5 && !checkV5Connect(ctx, conn, packet)) return;
  const method = v5 ? packet.properties?.authenticationMethod : undefined;
  if (method !== undefined) {
    enhanced(ctx, conn, packet, method, assigned);
    return;
  }

  let outcome: Maybe<AuthenticateOutcome>;
  try {
    outcome = ctx.hooks.authenticate({
      clientId,
      username: packet.username,
      password: packet.password,
      remoteAddress: conn.info.remoteAddress,
      listener: conn.info.listener,
      protocolVersion: packet.protocolVersion,
      ...(conn.info.certificateSubject === undefined ? {} : { certificateSubject: conn.info.certificateSubject }),
    });
  } catch (error) {
    authFailed(ctx, conn, packet, error);
    return;
  }
  if (!(outcome instanceof Promise)) {
    decide(ctx, conn, packet, outcome, assigned);
    return;
  }
  // Packets sent right after CONNECT wait until the decision [MQTT-3.1.4-5 allows only CONNACK first].
  conn.state = 'authenticating';
  conn.holdPackets();
  outcome.then(
    (decision) => {
      if (conn.state !== 'authenticating') return;
      decide(ctx, conn, packet, decision, assigned);
      conn.releaseHold();
    },
    (error: unknown) => {
      if (conn.state !== 'authenticating') return;
      authFailed(ctx, conn, packet, error);
    },
  );
}

/**
 * MQTT 5 enhanced authentication at CONNECT: the plugin for the method runs its exchange (AUTH
 * packets); the client may send nothing else until CONNACK [MQTT-3.1.2-30].
 */
function enhanced(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, method: string, assigned: boolean): void {
  const plugin = ctx.hooks.enhancedAuthenticator(method)!;
  conn.state = 'authenticating';
  const client = {
    clientId: conn.clientId,
    username: packet.username,
    password: packet.password,
    remoteAddress: conn.info.remoteAddress,
    listener: conn.info.listener,
    protocolVersion: packet.protocolVersion,
    ...(conn.info.certificateSubject === undefined ? {} : { certificateSubject: conn.info.certificateSubject }),
  };
  beginEnhancedAuth(ctx, conn, plugin, method, client, false, packet.properties?.authenticationData, (result) => {
    if (typeof result === 'object') {
      conn.authMethod = method;
      accept(ctx, conn, packet, assigned, result.username ?? packet.username, result.attributes, connackAuthProperties(packet, result.data));
      return;
    }
    ctx.stats.authFailures++;
    switch (result) {
      case 'bad-credentials':
        refuse(ctx, conn, packet, REFUSE.credentials, `enhanced authentication (${method}) failed`);
        return;
      case 'not-authorized':
        refuse(ctx, conn, packet, REFUSE.notAuthorized, `enhanced authentication (${method}): not authorized`);
        return;
      case 'server-unavailable':
        refuse(ctx, conn, packet, REFUSE.unavailable, `enhanced authentication (${method}) unavailable`);
        return;
    }
  });
}

/** MQTT 5 CONNECT checks that can refuse the connection; returns false after refusing. */
function checkV5Connect(ctx: BrokerContext, conn: Connection, packet: ConnectPacket): boolean {
  const method = packet.properties?.authenticationMethod;
  if (method !== undefined && ctx.hooks.enhancedAuthenticator(method) === undefined) {
    // [MQTT-4.12.0-1] no plugin handles this Authentication Method: CONNACK 0x8C.
    refuse(ctx, conn, packet, REFUSE.authMethod, `authentication method "${method}" is not supported`);
    return false;
  }
  const will = packet.will;
  if (will !== undefined) {
    if (will.qos > ctx.options.maxQoS) {
      // [MQTT-3.2.2-12] a will QoS above the maximum QoS is refused with 0x9B.
      refuse(ctx, conn, packet, REFUSE.qos, `will QoS ${will.qos} above maximum QoS ${ctx.options.maxQoS}`);
      return false;
    }
    if (will.retain && !ctx.options.retainAvailable) {
      // [MQTT-3.2.2-13] a retained will when retain is not available is refused with 0x9A.
      refuse(ctx, conn, packet, REFUSE.retain, 'retained will, but retained messages are not available');
      return false;
    }
    if (ctx.options.validateUtf8Payload && will.properties?.payloadFormatIndicator === 1 && !isUtf8(will.payload)) {
      refuse(ctx, conn, packet, REFUSE.payloadFormat, 'will payload declared UTF-8 is not valid UTF-8');
      return false;
    }
  }
  return true;
}

function decide(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, outcome: AuthenticateOutcome, assigned: boolean): void {
  if (outcome.accept) {
    accept(ctx, conn, packet, assigned, outcome.username, outcome.attributes);
    return;
  }
  if (outcome.refusal !== 'server-unavailable') ctx.stats.authFailures++;
  switch (outcome.refusal) {
    case 'bad-credentials':
      refuse(ctx, conn, packet, REFUSE.credentials, 'bad user name or password');
      return;
    case 'not-authorized':
      refuse(ctx, conn, packet, REFUSE.notAuthorized, 'not authorized');
      return;
    case 'server-unavailable':
      refuse(ctx, conn, packet, REFUSE.unavailable, 'authentication service unavailable');
      return;
  }
}

function authFailed(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, error: unknown): void {
  ctx.logger.error({ clientId: conn.clientId, err: error }, 'authentication hook failed');
  refuse(ctx, conn, packet, REFUSE.unavailable, 'authentication hook failed');
}

/** Sends a refusing CONNACK and closes [MQTT-3.2.2-5]: session present is 0 on any refusal [MQTT-3.2.2-4]. */
function refuse(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, refusal: Refusal, why: string): void {
  ctx.stats.connectionsRefused++;
  const reasonCode = packet.protocolVersion === 5 ? refusal.v5 : refusal.v3;
  ctx.logger.info(
    { clientId: packet.clientId || undefined, username: packet.username, remote: conn.info.remoteAddress, reasonCode },
    `connection refused: ${why}`,
  );
  // MQTT 5 refusals carry the reason in words (Reason String, allowed on CONNACK [MQTT-3.1.2-29]).
  if (packet.protocolVersion === 5) conn.send({ type: 'connack', sessionPresent: false, reasonCode, properties: { reasonString: why } });
  else conn.send({ type: 'connack', sessionPresent: false, reasonCode });
  conn.close('connect-refused');
}

/** Takes over or creates the session, answers CONNACK 0 and resumes delivery. */
function accept(
  ctx: BrokerContext,
  conn: Connection,
  packet: ConnectPacket,
  assigned: boolean,
  username: string | undefined,
  attributes: Record<string, unknown> | undefined,
  authProperties?: Properties,
  claimed = false,
): void {
  if (ctx.cluster !== undefined && !claimed) {
    // In a cluster the client id may be held by another node: it lets go first (closing that
    // connection, 0x8E) and the stored session comes here. Later packets wait.
    conn.state = 'authenticating';
    conn.holdPackets();
    const clean = packet.protocolVersion === 5 ? packet.clean && (packet.properties?.sessionExpiryInterval ?? 0) === 0 : packet.clean;
    ctx.claimSession(conn.clientId, clean).then(
      () => {
        if (conn.state !== 'authenticating') return;
        accept(ctx, conn, packet, assigned, username, attributes, authProperties, true);
        conn.releaseHold();
      },
      (error: unknown) => {
        if (conn.state !== 'authenticating') return;
        ctx.logger.error({ clientId: conn.clientId, err: error instanceof Error ? error.message : error }, 'cluster: claiming the client id failed');
        refuse(ctx, conn, packet, REFUSE.unavailable, 'cluster state (Redis) unavailable');
      },
    );
    return;
  }
  const clientId = conn.clientId;
  const v5 = packet.protocolVersion === 5;
  const options = ctx.options;
  const props = packet.properties;
  const existing = ctx.online.get(clientId);
  if (existing !== undefined && existing !== conn) {
    // [MQTT-3.1.4-2] the server disconnects the existing client with the same id (0x8E in MQTT 5).
    ctx.logger.info({ clientId, remote: conn.info.remoteAddress }, 'session taken over by a new connection');
    existing.close('session-taken-over');
  }
  let session = ctx.sessions.get(clientId);
  if (session !== undefined && session.link === undefined && Date.now() >= session.expiresAt) {
    // Expired (perhaps while the broker was down) but not yet swept: it is gone [MQTT-3.1.2-23 (5.0)].
    ctx.sessionEnded(session);
    session = undefined;
  }
  let sessionPresent = false;
  if (packet.clean || session === undefined) {
    // [MQTT-3.1.2-6] CleanSession / Clean Start = 1 discards any previous session and starts a new one.
    if (session !== undefined) ctx.sessionEnded(session);
    session = ctx.sessions.create(clientId);
  } else {
    // [MQTT-3.1.2-4] resume the stored session; its pending will (delay not yet over) is not sent [MQTT-3.1.3-9].
    ctx.cancelWill(session);
    sessionPresent = true;
  }

  // Session expiry: 3.1.1 CleanSession=0 keeps the session (bounded by maxSessionExpiry); MQTT 5 says how long.
  const requestedExpiry = v5 ? (props?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER_EXPIRES;
  session.expiryInterval = Math.min(requestedExpiry, options.maxSessionExpiry);
  if (session.persistent && ctx.journal !== undefined) {
    // A persistent session is stored: its record now, its deliveries as they happen.
    session.journal = ctx.journal;
    ctx.journal.putSession(session);
  }
  session.will = packet.will;
  session.inflightLimit = Math.min(options.maxInflight, props?.receiveMaximum ?? 65_535);

  let keepalive = packet.keepalive;
  const connack: Properties = { ...authProperties };
  if (v5) {
    conn.clientTopicAliasMax = props?.topicAliasMaximum ?? 0;
    if (session.expiryInterval !== requestedExpiry) connack.sessionExpiryInterval = session.expiryInterval;
    if (options.receiveMaximum < 65_535) connack.receiveMaximum = options.receiveMaximum;
    if (options.maxQoS < 2) connack.maximumQoS = options.maxQoS as 0 | 1;
    if (!options.retainAvailable) connack.retainAvailable = 0;
    if (options.maxPacketSize < 268_435_460) connack.maximumPacketSize = options.maxPacketSize;
    // [MQTT-3.2.2-16] an assigned client identifier is returned to the client.
    if (assigned) connack.assignedClientIdentifier = clientId;
    if (options.topicAliasMaximum > 0) connack.topicAliasMaximum = options.topicAliasMaximum;
    if (!options.wildcardSubscriptionAvailable) connack.wildcardSubscriptionAvailable = 0;
    if (!options.subscriptionIdentifiersAvailable) connack.subscriptionIdentifiersAvailable = 0;
    if (!options.sharedSubscriptionAvailable) connack.sharedSubscriptionAvailable = 0;
    if (keepalive > options.maxKeepAlive || (keepalive === 0 && options.maxKeepAlive < 65_535)) {
      // [MQTT-3.2.2-21] the client must use the Server Keep Alive we send.
      keepalive = options.maxKeepAlive;
      connack.serverKeepAlive = keepalive;
    }
    if (props?.requestResponseInformation === 1 && options.responseInformation !== undefined) {
      connack.responseInformation = `${options.responseInformation}${clientId}`;
    }
  }
  const identity: ClientIdentity = { clientId, username, remoteAddress: conn.info.remoteAddress, listener: conn.info.listener };
  if (conn.info.certificateSubject !== undefined) identity.certificateSubject = conn.info.certificateSubject;
  if (attributes !== undefined) identity.attributes = attributes;
  conn.identity = identity;
  conn.username = username;
  session.identity = identity;
  conn.session = session;
  conn.state = 'connected';
  ctx.online.set(clientId, conn);
  ctx.onlinePerListener.set(conn.info.listener, (ctx.onlinePerListener.get(conn.info.listener) ?? 0) + 1);
  ctx.stats.connectionsAccepted++;
  // [MQTT-3.2.2-1/2/3] session present reflects whether a stored session is resumed.
  if (v5 && Object.keys(connack).length > 0) conn.send({ type: 'connack', sessionPresent, reasonCode: 0, properties: connack });
  else conn.send({ type: 'connack', sessionPresent, reasonCode: 0 });
  conn.startKeepAlive(keepalive);
  if (ctx.debugEnabled) ctx.logger.debug({ clientId, remote: conn.info.remoteAddress, clean: packet.clean, keepalive, sessionPresent, version: packet.protocolVersion }, 'client connected');
  ctx.hooks.connected(identity, ctx.pluginFailed);
  // In a cluster the will is kept in Redis too, for another node to publish should this one die.
  if (packet.will !== undefined) ctx.cluster?.clientOnline(clientId, packet.will);
  session.resume(conn);
}

let assignedCounter = 0;
const assignPrefix = `starling-${randomBytes(4).toString('hex')}-`;

/** A client id unique to this broker [MQTT-3.1.3-6]. */
function assignClientId(ctx: BrokerContext): string {
  let id: string;
  do {
    assignedCounter++;
    id = `${assignPrefix}${assignedCounter.toString(36)}`;
  } while (ctx.sessions.get(id) !== undefined || ctx.online.has(id));
  return id;
}
