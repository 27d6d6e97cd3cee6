/**
 * The child processes of bench/reconnect-storm.ts, driven over IPC:
 *
 * - `devices FIRST COUNT`: COUNT idle password clients (`dev-NNNNN`), each retrying like a real device
 *   (a refused or cut connection tries again after 1-2 s). `connect` opens them all at once and
 *   reports when every one has CONNACK 0; `drop` resets every socket at once (a network blip).
 * - `probe`: a QoS 1 publisher at RATE msg/s and its subscriber, connected throughout; reports the
 *   publish → delivery latency of every message.
 *
 *     node --import tsx bench/reconnect-storm-clients.ts devices|probe PORT ARGS…   (started by the bench)
 */
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { PacketDecoder } from '../src/protocol/decoder.js';
import { encodePacket } from '../src/protocol/encoder.js';
import type { Packet } from '../src/protocol/types.js';

/** A message from the bench to a child. */
export type StormCommand = { cmd: 'connect' } | { cmd: 'drop' } | { cmd: 'status' } | { cmd: 'stop' };
/** A message from a child to the bench. */
export type StormReport =
  | { kind: 'ready' }
  | { kind: 'connected'; ms: number; attempts: number; refused: number; cut: number }
  | { kind: 'dropped' }
  | { kind: 'status'; up: number; attempts: number; refused: number; cut: number }
  | { kind: 'latencies'; samples: [sentAt: number, ms: number][] };

/** The password of device `i` (the bench writes the same into the plaintext file). */
export function devicePassword(i: number): string {
  return `pw-${(i * 2_654_435_761) % 4_294_967_296}-${i}`;
}

/** The user name (and client id) of device `i`. */
export function deviceName(i: number): string {
  return `dev-${String(i).padStart(5, '0')}`;
}

const send = (report: StormReport): void => {
  process.send?.(report);
};

const CONNECT_TIMEOUT_MS = 15_000;

interface Device {
  index: number;
  connect: Buffer;
  socket: net.Socket | undefined;
  up: boolean;
  timer: NodeJS.Timeout | undefined;
}

function devices(port: number, first: number, count: number): void {
  const all: Device[] = [];
  for (let i = first; i < first + count; i++) {
    const name = deviceName(i);
    const connect = encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 600, clientId: name, username: name, password: Buffer.from(devicePassword(i)) }, 4);
    all.push({ index: i, connect, socket: undefined, up: false, timer: undefined });
  }
  let started = 0;
  let upCount = 0;
  let attempts = 0;
  let refused = 0;
  let cut = 0;
  let storming = false;

  const retry = (device: Device): void => {
    device.socket?.destroy();
    device.socket = undefined;
    if (!storming) return;
    device.timer = setTimeout(() => open(device), 1000 + Math.random() * 1000);
  };
  const open = (device: Device): void => {
    attempts++;
    // Source addresses 127.0.1.1-8: a storm needs more ports than one address has once sockets linger.
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.1.${(device.index % 8) + 1}` });
    device.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(device.connect));
    const timeout = setTimeout(() => {
      cut++;
      retry(device);
    }, CONNECT_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      if (device.up) return;
      clearTimeout(timeout);
      if (chunk[0] !== 0x20 || chunk[3] !== 0) {
        refused++;
        retry(device);
        return;
      }
      device.up = true;
      upCount++;
      if (upCount === all.length) {
        storming = false;
        send({ kind: 'connected', ms: performance.now() - started, attempts, refused, cut });
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timeout);
      if (device.socket !== socket) return;
      if (device.up) {
        device.up = false;
        upCount--;
      } else cut++;
      retry(device);
    });
  };

  process.on('message', (message: StormCommand) => {
    if (message.cmd === 'connect') {
      started = performance.now();
      attempts = refused = cut = 0;
      storming = true;
      for (const device of all) open(device);
    } else if (message.cmd === 'drop') {
      for (const device of all) {
        const socket = device.socket;
        device.socket = undefined;
        if (device.up) upCount--;
        device.up = false;
        // RST, as when a network path dies: no FIN handshake, no TIME_WAIT.
        socket?.resetAndDestroy();
      }
      send({ kind: 'dropped' });
    } else if (message.cmd === 'status') {
      send({ kind: 'status', up: upCount, attempts, refused, cut });
    } else {
      for (const device of all) device.socket?.destroy();
      process.exit(0);
    }
  });
  send({ kind: 'ready' });
}

async function mqttClient(port: number, clientId: string, password: string, onPacket: (packet: Packet, socket: net.Socket) => void): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const decoder = new PacketDecoder();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      for (const packet of decoder.push(chunk)) {
        if (packet.type === 'connack') {
          if (packet.reasonCode === 0) resolve();
          else reject(new Error(`${clientId}: CONNACK ${packet.reasonCode}`));
        } else onPacket(packet, socket);
      }
    });
    socket.write(encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 600, clientId, username: clientId, password: Buffer.from(password) }, 4));
  });
  return socket;
}

async function probe(port: number, rate: number, password: string): Promise<void> {
  // Send times as wall-clock milliseconds, so the bench can place each sample in its storm windows.
  const samples: [number, number][] = [];
  const t0 = performance.timeOrigin;
  const subscriber = await mqttClient(port, 'probe-sub', password, (packet, socket) => {
    if (packet.type === 'suback') subscribed();
    if (packet.type !== 'publish') return;
    const sentAt = packet.payload.readDoubleBE(0);
    samples.push([t0 + sentAt, performance.now() - sentAt]);
    socket.write(encodePacket({ type: 'puback', packetId: packet.packetId as number }, 4));
  });
  let subscribed: () => void = () => undefined;
  await new Promise<void>((resolve) => {
    subscribed = resolve;
    subscriber.write(encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'probe/latency', qos: 1 }] }, 4));
  });
  const publisher = await mqttClient(port, 'probe-pub', password, () => undefined);
  let packetId = 0;
  const payload = Buffer.alloc(64);
  // A fixed schedule: each message is due at start + n / rate, whatever happened to the previous one.
  const start = performance.now();
  let n = 0;
  const tick = (): void => {
    const now = performance.now();
    while (start + (n * 1000) / rate <= now) {
      n++;
      packetId = (packetId % 65_535) + 1;
      payload.writeDoubleBE(performance.now(), 0);
      publisher.write(encodePacket({ type: 'publish', topic: 'probe/latency', payload, qos: 1, retain: false, dup: false, packetId }, 4));
    }
    setTimeout(tick, Math.max(0, start + (n * 1000) / rate - performance.now()));
  };
  tick();
  process.on('message', (message: StormCommand) => {
    if (message.cmd !== 'stop') return;
    publisher.destroy();
    subscriber.destroy();
    // Exit only once the (large) report has left: process.exit would drop it.
    process.send?.({ kind: 'latencies', samples } satisfies StormReport, undefined, {}, () => process.exit(0));
  });
  send({ kind: 'ready' });
}

// Run as a child of the bench (the bench itself imports the names and passwords above).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [role, portText, ...rest] = process.argv.slice(2);
  const port = Number(portText);
  if (role === 'devices') devices(port, Number(rest[0]), Number(rest[1]));
  else if (role === 'probe') await probe(port, Number(rest[0]), rest[1] as string);
  else throw new Error(`unknown role ${role ?? ''}`);
}
