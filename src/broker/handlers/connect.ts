import { randomBytes } from 'node:crypto';
import { ConnackReturnCode } from '../../protocol/reason-codes.js';
import { ProtocolViolationError } from '../../protocol/errors.js';
import type { ConnectPacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import type { AuthenticateResult } from '../options.js';

/** Handles CONNECT: protocol checks, client id rules, authentication, then session set-up. */
export function handleConnect(ctx: BrokerContext, conn: Connection, packet: ConnectPacket): void {
  if (conn.state !== 'awaiting-connect') {
    // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
    throw new ProtocolViolationError('second CONNECT on one connection [MQTT-3.1.0-2]');
  }
  conn.version = packet.protocolVersion;
  conn.username = packet.username;
  if (packet.protocolVersion === 5) {
    // MQTT 5 sessions are not implemented yet: refuse cleanly in the client's own version.
    refuse(ctx, conn, packet, 0x84, 'MQTT 5 is not supported yet');
    return;
  }

  let clientId = packet.clientId;
  if (clientId.length === 0) {
    if (packet.protocolVersion === 3) {
      refuse(ctx, conn, packet, ConnackReturnCode.identifierRejected, 'MQTT 3.1 requires a client identifier');
      return;
    }
    if (!packet.clean) {
      // [MQTT-3.1.3-8] an empty client id with CleanSession=0 is rejected with return code 2.
      refuse(ctx, conn, packet, ConnackReturnCode.identifierRejected, 'empty client identifier with CleanSession=0 [MQTT-3.1.3-8]');
      return;
    }
    // [MQTT-3.1.3-6] the server assigns a unique identifier.
    clientId = assignClientId(ctx);
  } else if (Buffer.byteLength(clientId) > ctx.options.maxClientIdLength) {
    refuse(ctx, conn, packet, ConnackReturnCode.identifierRejected, `client identifier longer than ${ctx.options.maxClientIdLength} bytes`);
    return;
  }
  conn.clientId = clientId;

  if (ctx.online.size >= ctx.options.maxConnections && ctx.online.get(clientId) === undefined) {
    refuse(ctx, conn, packet, ConnackReturnCode.serverUnavailable, `connection limit of ${ctx.options.maxConnections} reached`);
    return;
  }

  const authenticate = ctx.options.authenticate;
  if (authenticate === undefined) {
    accept(ctx, conn, packet);
    return;
  }
  let result: AuthenticateResult | Promise<AuthenticateResult>;
  try {
    result = authenticate({ clientId, username: packet.username, password: packet.password, remoteAddress: conn.info.remoteAddress });
  } catch (error) {
    authFailed(ctx, conn, packet, error);
    return;
  }
  if (typeof result === 'string') {
    decide(ctx, conn, packet, result);
    return;
  }
  // Packets sent right after CONNECT wait until the decision [MQTT-3.1.4-5 allows only CONNACK first].
  conn.state = 'authenticating';
  conn.backlog = [];
  result.then(
    (decision) => {
      if (conn.state !== 'authenticating') return;
      decide(ctx, conn, packet, decision);
      conn.replayBacklog();
    },
    (error: unknown) => {
      if (conn.state !== 'authenticating') return;
      authFailed(ctx, conn, packet, error);
    },
  );
}

function decide(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, result: AuthenticateResult): void {
  switch (result) {
    case 'accept':
      accept(ctx, conn, packet);
      return;
    case 'bad-credentials':
      refuse(ctx, conn, packet, ConnackReturnCode.badUsernameOrPassword, 'bad user name or password');
      return;
    case 'not-authorized':
      refuse(ctx, conn, packet, ConnackReturnCode.notAuthorized, 'not authorized');
      return;
    case 'server-unavailable':
      refuse(ctx, conn, packet, ConnackReturnCode.serverUnavailable, 'authentication service unavailable');
      return;
  }
}

function authFailed(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, error: unknown): void {
  ctx.logger.error({ clientId: conn.clientId, err: error }, 'authentication hook failed');
  refuse(ctx, conn, packet, ConnackReturnCode.serverUnavailable, 'authentication hook failed');
}

/** Sends a refusing CONNACK and closes [MQTT-3.2.2-5]: session present is 0 on any refusal [MQTT-3.2.2-4]. */
function refuse(ctx: BrokerContext, conn: Connection, packet: ConnectPacket, reasonCode: number, why: string): void {
  ctx.stats.connectionsRefused++;
  ctx.logger.info(
    { clientId: packet.clientId || undefined, username: packet.username, remote: conn.info.remoteAddress, reasonCode },
    `connection refused: ${why}`,
  );
  conn.send({ type: 'connack', sessionPresent: false, reasonCode });
  conn.close('connect-refused');
}

/** Takes over or creates the session, answers CONNACK 0 and resumes delivery. */
function accept(ctx: BrokerContext, conn: Connection, packet: ConnectPacket): void {
  const clientId = conn.clientId;
  const existing = ctx.online.get(clientId);
  if (existing !== undefined && existing !== conn) {
    // [MQTT-3.1.4-2] the server disconnects the existing client with the same id.
    ctx.logger.info({ clientId, remote: conn.info.remoteAddress }, 'session taken over by a new connection');
    existing.close('session-taken-over');
  }
  let session = ctx.sessions.get(clientId);
  let sessionPresent = false;
  if (packet.clean || session === undefined || !session.persistent) {
    // [MQTT-3.1.2-6] CleanSession=1 discards any previous session and starts a new one.
    session = ctx.sessions.create(clientId);
  } else {
    // [MQTT-3.1.2-4] resume the stored session.
    sessionPresent = true;
  }
  session.persistent = !packet.clean;
  session.will = packet.will;
  conn.session = session;
  conn.state = 'connected';
  ctx.online.set(clientId, conn);
  ctx.stats.connectionsAccepted++;
  // [MQTT-3.2.2-1/2/3] session present reflects whether a stored session is resumed.
  conn.send({ type: 'connack', sessionPresent, reasonCode: ConnackReturnCode.accepted });
  conn.startKeepAlive(packet.keepalive);
  if (ctx.debugEnabled) ctx.logger.debug({ clientId, remote: conn.info.remoteAddress, clean: packet.clean, keepalive: packet.keepalive, sessionPresent }, 'client connected');
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
