/** Packet encoding: exact-size buffers, one per packet, plus the broker's PUBLISH fast paths. */
import { encodeAck } from './packets/ack.js';
import { encodeAuth } from './packets/auth.js';
import { encodeConnack } from './packets/connack.js';
import { encodeConnect } from './packets/connect.js';
import { encodeDisconnect } from './packets/disconnect.js';
import { PINGREQ_BYTES, PINGRESP_BYTES } from './packets/ping.js';
import { encodePublish } from './packets/publish.js';
import { encodeSuback } from './packets/suback.js';
import { encodeSubscribe } from './packets/subscribe.js';
import { encodeUnsuback } from './packets/unsuback.js';
import { encodeUnsubscribe } from './packets/unsubscribe.js';
import type { Packet, ProtocolVersion } from './types.js';

/** PUBLISH fast paths for the broker: encode once, patch the packet id per subscriber, set DUP on resend. */
export { encodePublish, publishPacketIdOffset, setDupFlag } from './packets/publish.js';
export { encodeShortAck } from './packets/ack.js';

/**
 * Encodes `packet` for `version`: fields the version has no room for (properties, reason codes before
 * MQTT 5) are dropped. CONNECT uses its own `protocolVersion`. PINGREQ, PINGRESP and an empty
 * DISCONNECT return shared constant buffers, which must not be mutated.
 */
export function encodePacket(packet: Packet, version: ProtocolVersion): Buffer {
  switch (packet.type) {
    case 'publish': return encodePublish(packet, version);
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': return encodeAck(packet, version);
    case 'connect': return encodeConnect(packet);
    case 'connack': return encodeConnack(packet, version);
    case 'subscribe': return encodeSubscribe(packet, version);
    case 'suback': return encodeSuback(packet, version);
    case 'unsubscribe': return encodeUnsubscribe(packet, version);
    case 'unsuback': return encodeUnsuback(packet, version);
    case 'pingreq': return PINGREQ_BYTES;
    case 'pingresp': return PINGRESP_BYTES;
    case 'disconnect': return encodeDisconnect(packet, version);
    case 'auth': return encodeAuth(packet, version);
  }
}
