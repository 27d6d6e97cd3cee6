/** Dispatch of inbound packets to their handlers, and the small packets handled here: acknowledgements, PINGREQ, DISCONNECT. */
import { ProtocolViolationError } from '../../protocol/errors.js';
import { ReasonCode } from '../../protocol/reason-codes.js';
import type { DisconnectPacket, Packet } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { Core } from '../context.js';
import type { Session } from '../session.js';
import { handleAuth } from './auth.js';
import { handleConnect } from './connect.js';
import { handlePublish } from './publish.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';

/** Routes one inbound packet to its handler; throws MqttError for a protocol violation. */
export function handlePacket(core: Core, conn: Connection, packet: Packet): void {
  if (packet.type === 'connect') {
    handleConnect(core, conn, packet);
    return;
  }
  if (packet.type === 'auth') {
    handleAuth(core, conn, packet);
    return;
  }
  if (packet.type === 'disconnect' && conn.pendingAuth !== undefined && conn.state === 'authenticating') {
    // The client gave up during the authentication exchange.
    conn.close('client-disconnect');
    return;
  }
  const session = conn.session;
  if (conn.state !== 'connected' || session === undefined) {
    // [MQTT-3.1.0-1] the first packet from the client must be CONNECT.
    throw new ProtocolViolationError(`${packet.type.toUpperCase()} before CONNECT [MQTT-3.1.0-1]`);
  }
  const v5 = conn.version === 5;
  switch (packet.type) {
    case 'publish':
      handlePublish(core, conn, session, packet);
      return;
    case 'puback':
      session.acknowledge(packet.packetId);
      return;
    case 'pubrec':
      if (!session.received(packet.packetId, packet.reasonCode) && v5 && (packet.reasonCode ?? 0) < 0x80) {
        // MQTT 5: PUBREL 0x92 for an id we do not hold, so the client can end its flow.
        conn.send({ type: 'pubrel', packetId: packet.packetId, reasonCode: ReasonCode.packetIdentifierNotFound });
      }
      return;
    case 'pubrel': {
      // [MQTT-4.3.3-2] the id is released and PUBCOMP sent, even for an id we no longer hold
      // (MQTT 5 says so with 0x92).
      // The release must be durable before PUBCOMP: otherwise, after a crash, the id would come back
      // and the client's next message with that id would be taken for a duplicate.
      const journal = core.turn.journal;
      const before = journal?.size ?? 0;
      const known = session.releaseIncomingQos2(packet.packetId);
      const durable = core.options.durableAcks && journal !== undefined && journal.size !== before;
      if (known || !v5) conn.sendAck({ type: 'pubcomp', packetId: packet.packetId }, durable);
      else conn.sendAck({ type: 'pubcomp', packetId: packet.packetId, reasonCode: ReasonCode.packetIdentifierNotFound }, durable);
      return;
    }
    case 'pubcomp':
      session.completed(packet.packetId);
      return;
    case 'subscribe':
      handleSubscribe(core, conn, session, packet);
      return;
    case 'unsubscribe':
      handleUnsubscribe(core, conn, session, packet);
      return;
    case 'pingreq':
      // [MQTT-3.12.4-1] the server answers PINGREQ with PINGRESP.
      conn.send({ type: 'pingresp' });
      return;
    case 'disconnect':
      handleDisconnect(core, conn, session, packet);
      return;
    case 'connack':
    case 'suback':
    case 'unsuback':
    case 'pingresp':
      throw new ProtocolViolationError(`a client may not send ${packet.type.toUpperCase()}`);
  }
}

function handleDisconnect(core: Core, conn: Connection, session: Session, packet: DisconnectPacket): void {
  const expiry = packet.properties?.sessionExpiryInterval;
  if (expiry !== undefined) {
    // MQTT 5 section 3.14.2.2.2: a session that was to end with the connection cannot be extended at DISCONNECT.
    if (session.expiryInterval === 0 && expiry !== 0) throw new ProtocolViolationError('DISCONNECT sets a Session Expiry Interval after CONNECT set 0 (MQTT 5 section 3.14.2.2.2)');
    session.expiryInterval = Math.min(expiry, core.options.maxSessionExpiry);
  }
  if (packet.reasonCode === ReasonCode.disconnectWithWill) {
    // MQTT 5 reason 0x04: the client asks for its will to be published.
    conn.close('client-disconnect-with-will');
    return;
  }
  // [MQTT-3.14.4-3] on a normal DISCONNECT the will is discarded without being published.
  session.will = undefined;
  conn.close('client-disconnect');
}
