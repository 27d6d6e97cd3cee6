/**
 * One load generator process of the soak (bench/soak.ts): `count` simulated devices on raw MQTT 3.1.1
 * sockets (the project's codec, no client library, so one process holds thousands cheaply). Each
 * device publishes telemetry (QoS 0 or 1), keeps a retained status topic current, subscribes to its
 * command topic; some have persistent sessions, some a will. A share of the devices reconnects
 * every minute (churn: half of them vanish without DISCONNECT, so their wills fire). Generator 0
 * also runs the back end: two subscribers to all telemetry and wills, and a commander that sends
 * QoS 1 commands to random devices (queued for the offline persistent ones).
 *
 * Settings arrive as JSON in argv[2]; counters go to the parent over IPC every `reportMs`.
 */
import net from 'node:net';
import { PacketDecoder, encodePacket, type Packet } from '../src/protocol/index.js';

/** Settings of one generator. */
export interface DeviceSettings {
  port: number;
  generator: number;
  first: number;
  count: number;
  /** Share of all devices that reconnect per minute (0.05: 5%). */
  churnPerMinute: number;
  persistentShare: number;
  willShare: number;
  publishEveryMs: number;
  qos1Share: number;
  retainedEveryMs: number;
  keepaliveS: number;
  connectsPerSecond: number;
  commandsPerSecond: number;
  reportMs: number;
}

/** Counters a generator reports. */
export interface DeviceReport {
  generator: number;
  connected: number;
  connects: number;
  refused: number;
  unexpectedCloses: number;
  churned: number;
  published: number;
  publishedQos1: number;
  pubacksReceived: number;
  received: number;
  receivedQos1: number;
  retainedUpdates: number;
  commands: number;
}

const settings = JSON.parse(process.argv[2] ?? '{}') as DeviceSettings;
const report: DeviceReport = {
  generator: settings.generator, connected: 0, connects: 0, refused: 0, unexpectedCloses: 0, churned: 0,
  published: 0, publishedQos1: 0, pubacksReceived: 0, received: 0, receivedQos1: 0, retainedUpdates: 0, commands: 0,
};

/** A seeded PRNG per generator (mulberry32), so a run's choices can be replayed. */
let seed = 0x5eed + settings.generator * 7919;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** One simulated client: its socket, its decoder, when it next publishes and pings. */
class Device {
  socket: net.Socket | undefined;
  state: 'offline' | 'connecting' | 'online' = 'offline';
  nextPublish = 0;
  nextRetained = 0;
  nextPing = 0;
  reconnectAt = 0;
  private decoder = new PacketDecoder({ version: 4 });
  private packetId = 0;
  private closingOnPurpose = false;

  constructor(
    readonly clientId: string,
    readonly persistent: boolean,
    readonly will: boolean,
    /** Subscribes to every telemetry message and will (the back end) instead of behaving as a device. */
    readonly backEnd = false,
  ) {}

  connect(now: number): void {
    this.state = 'connecting';
    this.closingOnPurpose = false;
    this.decoder = new PacketDecoder({ version: 4 });
    const socket = net.connect({ port: settings.port, host: '127.0.0.1', noDelay: true });
    this.socket = socket;
    report.connects++;
    socket.on('connect', () => {
      socket.write(encodePacket({
        type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: !this.persistent, keepalive: settings.keepaliveS, clientId: this.clientId,
        ...(this.will ? { will: { topic: `soak/will/${this.clientId}`, payload: Buffer.from('gone'), qos: 1 as const, retain: false } } : {}),
      }, 4));
    });
    socket.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = this.decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const packet of packets) this.onPacket(packet, now);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.state === 'online') report.connected--;
      if (!this.closingOnPurpose) {
        report.unexpectedCloses++;
        this.reconnectAt = Date.now() + 5000;
      }
      this.state = 'offline';
      this.socket = undefined;
    });
  }

  private onPacket(packet: Packet, now: number): void {
    if (packet.type === 'connack') {
      if (packet.reasonCode !== 0) {
        report.refused++;
        this.socket?.destroy();
        return;
      }
      this.state = 'online';
      report.connected++;
      this.nextPing = Date.now() + settings.keepaliveS * 1000 * 0.8;
      if (this.backEnd) {
        this.send({ type: 'subscribe', packetId: this.nextId(), subscriptions: [{ topicFilter: 'soak/tele/#', qos: 0 }, { topicFilter: 'soak/will/#', qos: 1 }] });
        return;
      }
      // A persistent session keeps its subscription: subscribing again on every reconnect is what
      // real devices do too, and exercises the subscribe path under churn.
      this.send({ type: 'subscribe', packetId: this.nextId(), subscriptions: [{ topicFilter: `soak/cmd/${this.clientId}`, qos: this.persistent ? 1 : 0 }] });
      this.nextPublish = now + random() * settings.publishEveryMs;
      this.nextRetained = now;
    } else if (packet.type === 'publish') {
      report.received++;
      if (packet.qos === 1 && packet.packetId !== undefined) {
        report.receivedQos1++;
        this.send({ type: 'puback', packetId: packet.packetId });
      }
    } else if (packet.type === 'puback') {
      report.pubacksReceived++;
    }
  }

  /** Publishes what is due and pings when the keep-alive asks for it. */
  tick(now: number): void {
    if (this.state !== 'online') return;
    if (!this.backEnd && now >= this.nextPublish) {
      this.nextPublish = now + settings.publishEveryMs;
      const qos1 = random() < settings.qos1Share;
      this.publish(`soak/tele/${this.clientId}`, `{"t":${now},"v":${Math.round(random() * 1000)}}`, qos1 ? 1 : 0, false);
    }
    if (!this.backEnd && now >= this.nextRetained) {
      this.nextRetained = now + settings.retainedEveryMs;
      this.publish(`soak/status/${this.clientId}`, `{"online":true,"at":${now}}`, 1, true);
      report.retainedUpdates++;
    }
    if (now >= this.nextPing) {
      this.nextPing = now + settings.keepaliveS * 1000 * 0.8;
      this.send({ type: 'pingreq' });
    }
  }

  publish(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    const packet = qos === 0
      ? { type: 'publish' as const, topic, payload: Buffer.from(payload), qos: 0 as const, retain, dup: false }
      : { type: 'publish' as const, topic, payload: Buffer.from(payload), qos: 1 as const, retain, dup: false, packetId: this.nextId() };
    this.send(packet);
    report.published++;
    if (qos === 1) report.publishedQos1++;
  }

  /** Leaves: half the time with DISCONNECT, otherwise the socket just goes (the will fires). */
  leave(graceful: boolean): void {
    if (this.socket === undefined) return;
    this.closingOnPurpose = true;
    if (graceful) this.socket.end(encodePacket({ type: 'disconnect' }, 4));
    else this.socket.destroy();
  }

  private send(packet: Packet): void {
    if (this.socket !== undefined && !this.socket.destroyed) this.socket.write(encodePacket(packet, 4));
  }

  private nextId(): number {
    this.packetId = (this.packetId % 65_535) + 1;
    return this.packetId;
  }
}

const devices: Device[] = [];
for (let i = 0; i < settings.count; i++) {
  const n = settings.first + i;
  devices.push(new Device(`soak-${n}`, random() < settings.persistentShare, random() < settings.willShare));
}
const backEnds = settings.generator === 0 ? [new Device('soak-backend-1', false, false, true), new Device('soak-backend-2', false, false, true)] : [];
const commander = settings.generator === 0 ? new Device('soak-commander', false, false, true) : undefined;
const totalDevices = Number(process.env['SOAK_TOTAL_DEVICES'] ?? settings.count);

let connectCursor = 0;
let churnCarry = 0;
let commandCarry = 0;
let stopping = false;

/** Once per 100 ms: connects (ramp), reconnects, churn, publishes, pings, commands. */
const tick = setInterval(() => {
  const now = Date.now();
  if (stopping) return;
  let budget = Math.ceil(settings.connectsPerSecond / 10);
  while (budget > 0 && connectCursor < devices.length) {
    devices[connectCursor++]!.connect(now);
    budget--;
  }
  for (const extra of [...backEnds, ...(commander === undefined ? [] : [commander])]) if (extra.state === 'offline' && now >= extra.reconnectAt) extra.connect(now);
  const ramped = connectCursor >= devices.length;
  if (ramped) {
    churnCarry += (settings.count * settings.churnPerMinute) / 600;
    while (churnCarry >= 1) {
      churnCarry--;
      const device = devices[Math.floor(random() * devices.length)]!;
      if (device.state !== 'online') continue;
      device.leave(random() < 0.5);
      report.churned++;
      device.reconnectAt = now + 1000 + random() * 4000;
    }
  }
  for (const device of devices) {
    if (device.state === 'offline' && device.reconnectAt > 0 && now >= device.reconnectAt) device.connect(now);
    else device.tick(now);
  }
  for (const extra of backEnds) extra.tick(now);
  if (commander !== undefined && commander.state === 'online') {
    commander.tick(now);
    commandCarry += settings.commandsPerSecond / 10;
    while (commandCarry >= 1) {
      commandCarry--;
      commander.publish(`soak/cmd/soak-${Math.floor(random() * totalDevices)}`, `{"cmd":"set","at":${now}}`, 1, false);
      report.commands++;
    }
  }
}, 100);

const reporter = setInterval(() => process.send?.(report), settings.reportMs);

function stop(): void {
  if (stopping) return;
  stopping = true;
  clearInterval(tick);
  clearInterval(reporter);
  process.send?.(report);
  for (const device of [...devices, ...backEnds, ...(commander === undefined ? [] : [commander])]) device.leave(true);
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('disconnect', stop);
