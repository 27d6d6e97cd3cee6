import { ProtocolViolationError } from '../../protocol/errors.js';
import type { Packet } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import { handleConnect } from './connect.js';
import { handlePublish } from './publish.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';

/** Routes one inbound packet to its handler; throws MqttError for a protocol violation. */
export function handlePacket(ctx: BrokerContext, conn: Connection, packet: Packet): void {
  if (packet.type === 'connect') {
    handleConnect(ctx, conn, packet);
    return;
  }
  const session = conn.session;
  if (conn.state !== 'connected' || session === undefined) {
    // [MQTT-3.1.0-1] the first packet from the client must be CONNECT.
    throw new ProtocolViolationError(`${packet.type.toUpperCase()} before CONNECT [MQTT-3.1.0-1]`);
  }
  switch (packet.type) {
    case 'publish':
      handlePublish(ctx, conn, session, packet);
      return;
    case 'puback':
      session.acknowledge(packet.packetId);
      return;
    case 'pubrec':
      session.received(packet.packetId);
      return;
    case 'pubrel':
      // [MQTT-4.3.3-2] the id is released and PUBCOMP sent, even for an id we no longer hold.
      session.releaseIncomingQos2(packet.packetId);
      conn.send({ type: 'pubcomp', packetId: packet.packetId });
      return;
    case 'pubcomp':
      session.completed(packet.packetId);
      return;
    case 'subscribe':
      handleSubscribe(ctx, conn, session, packet);
      return;
    case 'unsubscribe':
      handleUnsubscribe(ctx, conn, session, packet);
      return;
    case 'pingreq':
      // [MQTT-3.12.4-1] the server answers PINGREQ with PINGRESP.
      conn.send({ type: 'pingresp' });
      return;
    case 'disconnect':
      // [MQTT-3.14.4-3] on DISCONNECT the will is discarded without being published.
      session.will = undefined;
      conn.close('client-disconnect');
      return;
    case 'connack':
    case 'suback':
    case 'unsuback':
    case 'pingresp':
    case 'auth':
      throw new ProtocolViolationError(`a client may not send ${packet.type.toUpperCase()}`);
  }
}
