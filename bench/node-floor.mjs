// The floor of a Node.js MQTT server: a net server that answers CONNECT with CONNACK, PINGREQ with
// PINGRESP and holds the sockets, doing nothing else. `node bench/node-floor.mjs PORT`; measured with
// mqload's conn scenario to document what one idle socket costs in Node before any broker logic.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import process from 'node:process';

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => {
    if (chunk[0] === 0x10) socket.write(CONNACK);
    else if (chunk[0] === 0xc0) socket.write(PINGRESP);
  });
  socket.on('error', () => socket.destroy());
});
server.listen({ port: Number(process.argv[2] ?? 1883), host: '127.0.0.1', backlog: 4096 });
process.on('SIGTERM', () => process.exit(0));
