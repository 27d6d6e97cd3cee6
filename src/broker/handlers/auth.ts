/** MQTT 5 enhanced authentication: the AUTH exchange at CONNECT and re-authentication. */
import { ProtocolViolationError } from '../../protocol/errors.js';
import { ReasonCode } from '../../protocol/reason-codes.js';
import type { AuthPacket, ConnectPacket, Properties } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { Core } from '../context.js';
import type { AuthExchange, AuthenticateRequest, BrokerPlugin, EnhancedAuthResult } from '../hooks.js';

/** How an exchange ends: accepted or refused. */
export type FinalAuthResult = Exclude<EnhancedAuthResult, { continue: Buffer }>;

/** An enhanced-authentication exchange in progress on a connection. */
export interface PendingAuth {
  plugin: BrokerPlugin;
  exchange: AuthExchange;
  /** What to do when the exchange ends. */
  done: (result: FinalAuthResult) => void;
}

/** Starts an exchange: asks the plugin for the first step with the data the client sent. */
export function beginEnhancedAuth(
  core: Core,
  conn: Connection,
  plugin: BrokerPlugin,
  method: string,
  client: AuthenticateRequest,
  reauthenticate: boolean,
  data: Buffer | undefined,
  done: (result: FinalAuthResult) => void,
): void {
  conn.pendingAuth = { plugin, exchange: { method, client, reauthenticate, state: {} }, done };
  step(core, conn, data);
}

/** Runs one step of the exchange and answers: AUTH 0x18 (continue) or the end of the exchange. */
function step(core: Core, conn: Connection, data: Buffer | undefined): void {
  const pending = conn.pendingAuth;
  if (pending === undefined) return;
  let answer: EnhancedAuthResult | Promise<EnhancedAuthResult>;
  try {
    answer = pending.plugin.authenticateEnhanced!(pending.exchange, data);
  } catch (error) {
    core.logger.error({ clientId: conn.clientId, plugin: pending.plugin.name, err: error }, 'enhanced authentication plugin failed');
    answer = 'server-unavailable';
  }
  if (answer instanceof Promise) {
    answer.then(
      (result) => {
        if (!conn.isClosed() && conn.pendingAuth === pending) respond(conn, pending, result);
      },
      (error: unknown) => {
        core.logger.error({ clientId: conn.clientId, plugin: pending.plugin.name, err: error }, 'enhanced authentication plugin failed');
        if (!conn.isClosed() && conn.pendingAuth === pending) respond(conn, pending, 'server-unavailable');
      },
    );
    return;
  }
  respond(conn, pending, answer);
}

function respond(conn: Connection, pending: PendingAuth, result: EnhancedAuthResult): void {
  if (typeof result === 'object' && 'continue' in result) {
    // [MQTT-4.12.0-2] the server sends AUTH 0x18 (continue authentication) with the same method.
    conn.send({ type: 'auth', reasonCode: ReasonCode.continueAuthentication, properties: { authenticationMethod: pending.exchange.method, authenticationData: result.continue } });
    return;
  }
  conn.pendingAuth = undefined;
  pending.done(result);
}

/** Handles an AUTH packet: the next step of an exchange, or the start of a re-authentication. */
export function handleAuth(core: Core, conn: Connection, packet: AuthPacket): void {
  if (conn.version !== 5) throw new ProtocolViolationError('AUTH exists only in MQTT 5');
  const method = packet.properties?.authenticationMethod;
  const reasonCode = packet.reasonCode ?? 0;
  const pending = conn.pendingAuth;
  if (pending !== undefined) {
    // [MQTT-4.12.0-5] every AUTH of an exchange carries the same Authentication Method.
    if (reasonCode !== ReasonCode.continueAuthentication) throw new ProtocolViolationError(`AUTH reason 0x${reasonCode.toString(16)} during an authentication exchange`);
    if (method !== pending.exchange.method) throw new ProtocolViolationError('AUTH with another Authentication Method than the exchange');
    step(core, conn, packet.properties?.authenticationData);
    return;
  }
  if (conn.state !== 'connected' || reasonCode !== ReasonCode.reAuthenticate) {
    throw new ProtocolViolationError('AUTH without an authentication exchange in progress');
  }
  // [MQTT-4.12.1-1] re-authentication uses the method of the original authentication.
  const connectMethod = conn.authMethod;
  const plugin = connectMethod === undefined ? undefined : core.hooks.enhancedAuthenticator(connectMethod);
  if (connectMethod === undefined || plugin === undefined || method !== connectMethod) {
    throw new ProtocolViolationError('re-authentication without the Authentication Method of CONNECT [MQTT-4.12.1-1]');
  }
  const identity = conn.identity!;
  const client: AuthenticateRequest = { ...identity, password: undefined, protocolVersion: 5 };
  beginEnhancedAuth(core, conn, plugin, connectMethod, client, true, packet.properties?.authenticationData, (result) => {
    if (typeof result === 'object') {
      const properties: Properties = { authenticationMethod: connectMethod };
      if (result.data !== undefined) properties.authenticationData = result.data;
      conn.send({ type: 'auth', reasonCode: ReasonCode.success, properties });
      return;
    }
    // [MQTT-4.12.1-2] a failed re-authentication ends the connection.
    core.stats.authFailures++;
    core.logger.info({ clientId: conn.clientId, method: connectMethod, refusal: result }, 'closing connection: re-authentication failed');
    conn.close('protocol-error', result === 'bad-credentials' ? ReasonCode.badUserNameOrPassword : result === 'server-unavailable' ? ReasonCode.serverUnavailable : ReasonCode.notAuthorized);
  });
}

/** The CONNACK properties that finish a successful exchange at CONNECT. */
export function connackAuthProperties(packet: ConnectPacket, data: Buffer | undefined): Properties {
  const properties: Properties = { authenticationMethod: packet.properties!.authenticationMethod! };
  if (data !== undefined) properties.authenticationData = data;
  return properties;
}
