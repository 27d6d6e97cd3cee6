// The floor of a Node.js MQTT server, to set Starling's figures beside (docs/benchmarks.md): a net
// server that answers CONNECT with CONNACK, SUBSCRIBE with SUBACK, PINGREQ with PINGRESP, acknowledges
// a QoS 1 PUBLISH and relays every PUBLISH's bytes unchanged to the subscribers (same packet id: the
// load generator checks payloads, not ids). No sessions, no routing beyond "every subscriber gets
// everything", one write per packet. `node bench/node-floor.mjs PORT`; measured with mqload's conn and
// iot scenarios, it is what one socket and one message cost in Node before any broker logic.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import process from 'node:process';

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);
const subscribers = new Set();

/** Calls `onPacket(first, bytes, bodyStart)` for each complete packet; returns the bytes left over. */
function frames(buf, onPacket) {
  let pos = 0;
  while (pos + 2 <= buf.length) {
    let p = pos + 1;
    let remaining = 0;
    let mul = 1;
    let done = false;
    while (p < buf.length) {
      const b = buf[p++];
      remaining += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) {
        done = true;
        break;
      }
    }
    if (!done || p + remaining > buf.length) break;
    onPacket(buf[pos], buf.subarray(pos, p + remaining), p - pos);
    pos = p + remaining;
  }
  return pos === buf.length ? undefined : buf.subarray(pos);
}

const server = net.createServer((socket) => {
  let rest;
  socket.on('data', (chunk) => {
    const buf = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
    rest = frames(buf, (first, packet, bodyStart) => {
      const type = first >> 4;
      if (type === 1) socket.write(CONNACK);
      else if (type === 12) socket.write(PINGRESP);
      else if (type === 8) {
        subscribers.add(socket);
        const id = packet.subarray(bodyStart, bodyStart + 2);
        socket.write(Buffer.from([0x90, 0x03, id[0], id[1], 0x01]));
      } else if (type === 3) {
        const qos = (first >> 1) & 3;
        if (qos > 0) {
          const topicLen = packet.readUInt16BE(bodyStart);
          const id = bodyStart + 2 + topicLen;
          socket.write(Buffer.from([0x40, 0x02, packet[id], packet[id + 1]]));
        }
        for (const sub of subscribers) sub.write(packet);
      }
    });
  });
  socket.on('close', () => subscribers.delete(socket));
  socket.on('error', () => socket.destroy());
});
server.listen({ port: Number(process.argv[2] ?? 1883), host: '127.0.0.1', backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));
