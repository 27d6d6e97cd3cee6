/** An accepted CONNECT: the client id claimed (in a cluster), the previous connection taken over, the session resumed or started, CONNACK with what the server grants. */
import type { ConnectPacket, Properties, Will } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { Core } from '../context.js';
import type { ClientIdentity } from '../hooks.js';
import { ownedCopy } from '../messages.js';
import { ConnectRefusal } from '../outcomes.js';
import { NEVER_EXPIRES, type Session } from '../session.js';
import { connectionLimitReached, refuseConnect, sessionLimitReached } from './connect.js';

/** What authentication decided about an accepted client. */
export interface Admission {
  /** The server assigned the client id [MQTT-3.1.3-6]. */
  assigned: boolean;
  /** The user name the client is known by (a plugin may set it). */
  username: string | undefined;
  attributes: Record<string, unknown> | undefined;
  /** MQTT 5 enhanced authentication: its method (kept for re-authentication) and CONNACK properties. */
  authMethod: string | undefined;
  authProperties: Properties | undefined;
}

/** Takes over or creates the session, answers CONNACK 0 and resumes delivery. */
export function acceptConnect(core: Core, conn: Connection, packet: ConnectPacket, admission: Admission): void {
  const cluster = core.cluster;
  if (cluster === undefined) {
    admit(core, conn, packet, admission);
    return;
  }
  // In a cluster the client id may be held by another node: it lets go first (closing that
  // connection, 0x8E) and the stored session comes here. Later packets wait.
  conn.authenticating();
  conn.holdPackets();
  const clean = packet.protocolVersion === 5 ? packet.clean && (packet.properties?.sessionExpiryInterval ?? 0) === 0 : packet.clean;
  cluster.claimSession(conn.clientId, clean).then(
    () => {
      if (conn.state !== 'authenticating') return;
      if (cluster.bus.othersLoad !== undefined && !withinGroupLimits(core, conn, packet)) return;
      admit(core, conn, packet, admission);
      conn.releaseHold();
    },
    (error: unknown) => {
      if (conn.state !== 'authenticating') return;
      core.logger.error({ clientId: conn.clientId, err: error instanceof Error ? error.message : error }, 'cluster: claiming the client id failed');
      refuseConnect(core, conn, packet, ConnectRefusal.unavailable, 'cluster state (Redis) unavailable');
    },
  );
}

/**
 * A worker group's limits, checked once the claim is done: a connection another worker had was closed
 * by it and a session another worker held is here now, so only a new connection or session counts.
 */
function withinGroupLimits(core: Core, conn: Connection, packet: ConnectPacket): boolean {
  const clientId = conn.clientId;
  const options = core.options;
  if (connectionLimitReached(core, clientId)) refuseConnect(core, conn, packet, ConnectRefusal.busy, `connection limit of ${options.maxConnections} reached`);
  else if (sessionLimitReached(core, clientId)) refuseConnect(core, conn, packet, ConnectRefusal.quota, `session limit of ${options.maxSessions} reached`);
  else return true;
  // The claim counted the client id here as connected: it is let go again (a stored session that
  // came with the claim stays held here).
  if (core.clients.get(clientId) === undefined) core.cluster?.bus.clientOffline(clientId, core.sessions.get(clientId)?.persistent === true);
  return false;
}

/** The client id is ours: take over, resume or start the session, CONNACK. */
function admit(core: Core, conn: Connection, packet: ConnectPacket, admission: Admission): void {
  const clientId = conn.clientId;
  const v5 = packet.protocolVersion === 5;
  const existing = core.clients.get(clientId);
  if (existing !== undefined && existing !== conn) {
    // [MQTT-3.1.4-2] the server disconnects the existing client with the same id (0x8E in MQTT 5).
    core.logger.info({ clientId, remote: conn.info.remoteAddress }, 'session taken over by a new connection');
    existing.close('session-taken-over');
  }
  const { session, sessionPresent } = takeSession(core, clientId, packet.clean);
  const options = core.options;
  // Session expiry: 3.1.1 CleanSession=0 keeps the session (bounded by maxSessionExpiry); MQTT 5 says how long.
  const requestedExpiry = v5 ? (packet.properties?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER_EXPIRES;
  session.expiryInterval = Math.min(requestedExpiry, options.maxSessionExpiry);
  const journal = core.turn.journal;
  if (session.persistent && journal !== undefined) {
    // A persistent session is stored: its record now, its deliveries as they happen.
    session.journal = journal;
    journal.putSession(session);
  }
  // Kept for the whole connection: its payload (and correlation data) are copied out of the read buffer.
  session.will = packet.will === undefined ? undefined : ownedWill(packet.will);
  session.inflightLimit = Math.min(options.maxInflight, packet.properties?.receiveMaximum ?? 65_535);

  const { keepalive, connack } = grants(core, packet, session, requestedExpiry, admission);
  const identity: ClientIdentity = { clientId, username: admission.username, remoteAddress: conn.info.remoteAddress, listener: conn.info.listener };
  if (conn.info.certificateSubject !== undefined) identity.certificateSubject = conn.info.certificateSubject;
  if (admission.attributes !== undefined) identity.attributes = admission.attributes;
  session.identity = identity;
  conn.accepted({ session, identity, keepalive, topicAliasMaximum: v5 ? (packet.properties?.topicAliasMaximum ?? 0) : 0, authMethod: admission.authMethod });
  core.clients.online(conn);
  core.stats.connectionsAccepted++;
  // [MQTT-3.2.2-1/2/3] session present reflects whether a stored session is resumed.
  if (connack !== undefined) conn.send({ type: 'connack', sessionPresent, reasonCode: 0, properties: connack });
  else conn.send({ type: 'connack', sessionPresent, reasonCode: 0 });
  core.logger.info(
    { clientId, remote: conn.info.remoteAddress, username: admission.username, protocol: packet.protocolVersion, clean: packet.clean, keepalive, sessionPresent },
    'client connected',
  );
  core.hooks.connected(identity, core.pluginFailed);
  // In a cluster the will is kept in Redis too, for another node to publish should this one die.
  if (packet.will !== undefined) core.cluster?.bus.clientOnline(clientId, packet.will);
  session.resume(conn);
}

/** `will` with its bytes in memory of their own (see ownedCopy). */
function ownedWill(will: Will): Will {
  const correlationData = will.properties?.correlationData;
  const properties = correlationData === undefined ? will.properties : { ...will.properties, correlationData: ownedCopy(correlationData) };
  return { ...will, payload: ownedCopy(will.payload), ...(properties === undefined ? {} : { properties }) };
}

/** The session a CONNECT gets: the stored one resumed [MQTT-3.1.2-4], or a new one [MQTT-3.1.2-6]. */
function takeSession(core: Core, clientId: string, clean: boolean): { session: Session; sessionPresent: boolean } {
  let session = core.sessions.get(clientId);
  if (session !== undefined && session.link === undefined && Date.now() >= session.expiresAt) {
    // Expired (perhaps while the broker was down) but not yet swept: it is gone [MQTT-3.1.2-23 (5.0)].
    core.lifecycle.ended(session);
    session = undefined;
  }
  if (clean || session === undefined) {
    // CleanSession / Clean Start = 1 discards any previous session and starts a new one.
    if (session !== undefined) core.lifecycle.ended(session);
    return { session: core.sessions.create(clientId), sessionPresent: false };
  }
  // Its pending will (delay not yet over) is not sent [MQTT-3.1.3-9].
  core.lifecycle.resumed(session);
  return { session, sessionPresent: true };
}

/** The keep-alive in force and the MQTT 5 CONNACK properties: what the server grants or changes. */
function grants(core: Core, packet: ConnectPacket, session: Session, requestedExpiry: number, admission: Admission): { keepalive: number; connack: Properties | undefined } {
  let keepalive = packet.keepalive;
  if (packet.protocolVersion !== 5) return { keepalive, connack: undefined };
  const options = core.options;
  const props = packet.properties;
  const connack: Properties = { ...admission.authProperties };
  if (session.expiryInterval !== requestedExpiry) connack.sessionExpiryInterval = session.expiryInterval;
  if (options.receiveMaximum < 65_535) connack.receiveMaximum = options.receiveMaximum;
  if (options.maxQoS < 2) connack.maximumQoS = options.maxQoS as 0 | 1;
  if (!options.retainAvailable) connack.retainAvailable = 0;
  if (options.maxPacketSize < 268_435_460) connack.maximumPacketSize = options.maxPacketSize;
  // [MQTT-3.2.2-16] an assigned client identifier is returned to the client.
  if (admission.assigned) connack.assignedClientIdentifier = session.clientId;
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
    connack.responseInformation = `${options.responseInformation}${session.clientId}`;
  }
  return { keepalive, connack: Object.keys(connack).length > 0 ? connack : undefined };
}
