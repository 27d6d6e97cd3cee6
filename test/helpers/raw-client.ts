/**
 * A raw MQTT test client over a TCP socket, built on our codec: for byte-exact checks and for
 * clients that misbehave on purpose. Every wait is bounded so a broken broker fails a test
 * instead of hanging it.
 */
import net from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { PacketDecoder } from '../../src/protocol/decoder.js';
import { encodePacket } from '../../src/protocol/encoder.js';
import { publishesSettled } from './publish-barrier.js';
import type { ConnackPacket, ConnectPacket, Packet, PacketTypeName, ProtocolVersion, PublishPacket, QoS, SubackPacket } from '../../src/protocol/types.js';

/** Default bound of every wait, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 2000;

/** The packet of a given type name. */
export type PacketOf<T extends PacketTypeName> = Extract<Packet, { type: T }>;

/** Options of `RawClient.connect`. */
export interface RawClientOptions {
  host?: string;
  /** Version used to encode and decode packets other than CONNECT (default 4; set by connectMqtt). */
  version?: ProtocolVersion;
}

/** Fields of a CONNECT; anything left out gets a 3.1.1 default. */
export type ConnectFields = Partial<Omit<ConnectPacket, 'type'>>;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A raw MQTT client: sends any packet or bytes, queues every packet it receives. */
export class RawClient {
  /** Protocol version used to encode and decode (after CONNECT). */
  version: ProtocolVersion;
  /** True once the server closed (or reset) the connection, or destroy() was called. */
  closed = false;
  /** Decoding error, if the server sent bytes that are not a valid packet. */
  decodeError: Error | undefined;

  private readonly decoder: PacketDecoder;
  private readonly queue: Packet[] = [];
  private readonly listeners = new Set<() => void>();
  private nextPacketId = 1;

  private constructor(
    readonly socket: net.Socket,
    version: ProtocolVersion,
  ) {
    this.version = version;
    this.decoder = new PacketDecoder({ version });
    socket.on('data', (chunk: Buffer) => {
      if (this.decodeError !== undefined) return;
      try {
        this.decoder.push(chunk, this.queue);
      } catch (error) {
        this.decodeError = error as Error;
      }
      this.notify();
    });
    const onGone = (): void => {
      this.closed = true;
      this.notify();
    };
    socket.on('end', onGone);
    socket.on('close', onGone);
    socket.on('error', onGone);
  }

  /** Opens a TCP connection to the broker (no MQTT packet is sent). */
  static connect(port: number, options: RawClientOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: options.host ?? '127.0.0.1', port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TCP connect to port ${port} timed out`));
      }, DEFAULT_TIMEOUT_MS);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawClient(socket, options.version ?? 4));
      });
    });
  }

  /** Opens a connection, sends CONNECT and asserts CONNACK 0 (accepted). */
  static async connected(port: number, fields: ConnectFields = {}): Promise<RawClient> {
    const client = await RawClient.connect(port);
    const connack = await client.connectMqtt(fields);
    if (connack.reasonCode !== 0) {
      client.destroy();
      throw new Error(`CONNECT of "${fields.clientId ?? ''}" refused with return code ${connack.reasonCode}`);
    }
    return client;
  }

  /** Number of packets received and not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  /** Sends a packet (encoded in this client's version) or raw bytes. */
  send(packet: Packet | Buffer): void {
    const bytes = Buffer.isBuffer(packet) ? packet : encodePacket(packet, this.version);
    this.socket.write(bytes);
  }

  /** Sends CONNECT built from `fields` (3.1.1, clean, keep alive 0 by default) and returns the CONNACK. */
  async connectMqtt(fields: ConnectFields = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ConnackPacket> {
    const protocolVersion = fields.protocolVersion ?? 4;
    const packet: ConnectPacket = {
      type: 'connect',
      protocolName: protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      clean: true,
      keepalive: 0,
      clientId: '',
      ...fields,
      protocolVersion,
    };
    this.version = protocolVersion;
    this.decoder.version = protocolVersion;
    this.send(packet);
    return this.expect('connack', timeoutMs);
  }

  /** Subscribes and returns the SUBACK (asserting its packet id). */
  async subscribe(filters: string | [filter: string, qos: QoS][], qos: QoS = 0): Promise<SubackPacket> {
    const subscriptions = typeof filters === 'string' ? [{ topicFilter: filters, qos }] : filters.map(([topicFilter, q]) => ({ topicFilter, qos: q }));
    await publishesSettled();
    const packetId = this.allocatePacketId();
    this.send({ type: 'subscribe', packetId, subscriptions });
    const suback = await this.expect('suback');
    if (suback.packetId !== packetId) throw new Error(`SUBACK packet id ${suback.packetId}, expected ${packetId}`);
    return suback;
  }

  /** Publishes; a QoS 1 or 2 PUBLISH gets a fresh packet id unless one is given. Returns the packet id. */
  publish(topic: string, payload: string | Buffer, qos: QoS = 0, extra: { retain?: boolean; dup?: boolean; packetId?: number } = {}): number {
    const packetId = qos > 0 ? (extra.packetId ?? this.allocatePacketId()) : 0;
    const packet: PublishPacket = {
      type: 'publish',
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      retain: extra.retain ?? false,
      dup: extra.dup ?? false,
    };
    if (qos > 0) packet.packetId = packetId;
    this.send(packet);
    return packetId;
  }

  /** The next received packet, whatever its type. */
  async next(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const packet = this.queue.shift();
      if (packet !== undefined) return packet;
      if (this.decodeError !== undefined) throw new Error(`server sent an undecodable packet: ${this.decodeError.message}`);
      if (this.closed) throw new Error('connection closed while waiting for a packet');
      if (!(await this.waitChange(deadline))) throw new Error(`no packet within ${timeoutMs} ms`);
    }
  }

  /** The next received packet, which must be of type `type`. */
  async expect<T extends PacketTypeName>(type: T, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PacketOf<T>> {
    let packet: Packet;
    try {
      packet = await this.next(timeoutMs);
    } catch (error) {
      throw new Error(`expected ${type.toUpperCase()}: ${(error as Error).message}`, { cause: error });
    }
    if (packet.type !== type) throw new Error(`expected ${type.toUpperCase()}, got ${describePacket(packet)}`);
    return packet as PacketOf<T>;
  }

  /** The next `count` packets, each of type `type`. */
  async expectMany<T extends PacketTypeName>(type: T, count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PacketOf<T>[]> {
    const deadline = Date.now() + timeoutMs;
    const out: PacketOf<T>[] = [];
    while (out.length < count) {
      try {
        out.push(await this.expect(type, Math.max(1, deadline - Date.now())));
      } catch (error) {
        throw new Error(`after ${out.length} of ${count}: ${(error as Error).message}`, { cause: error });
      }
    }
    return out;
  }

  /** Asserts that no packet arrives (and the connection stays open) for `ms` milliseconds. */
  async expectSilence(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const packet = this.queue[0];
      if (packet !== undefined) throw new Error(`expected no packet, got ${describePacket(packet)}`);
      if (this.closed) throw new Error('expected no packet, but the connection was closed');
      if (!(await this.waitChange(deadline))) return;
    }
  }

  /**
   * Resolves when the server has closed the connection. A packet arriving first fails, unless
   * `allowPackets`; the packets received before the close are returned.
   */
  async expectClosed(timeoutMs = DEFAULT_TIMEOUT_MS, options: { allowPackets?: boolean } = {}): Promise<Packet[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const packet = this.queue[0];
      if (packet !== undefined && options.allowPackets !== true) {
        throw new Error(`expected the connection to be closed, got ${describePacket(packet)}`);
      }
      if (this.closed) return this.queue.splice(0);
      if (!(await this.waitChange(deadline))) throw new Error(`connection still open after ${timeoutMs} ms`);
    }
  }

  /** Sends DISCONNECT and closes the socket. */
  disconnect(): void {
    if (this.closed) return;
    this.send({ type: 'disconnect' });
    this.socket.end();
  }

  /** Closes the socket abruptly, without DISCONNECT. */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
    this.notify();
  }

  /** Next packet id for SUBSCRIBE / UNSUBSCRIBE / PUBLISH (1..65535). */
  allocatePacketId(): number {
    const id = this.nextPacketId;
    this.nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** Waits for a packet, a close or the deadline; false when the deadline passed first. */
  private waitChange(deadline: number): Promise<boolean> {
    const ms = deadline - Date.now();
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onChange = (): void => {
        clearTimeout(timer);
        this.listeners.delete(onChange);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(onChange);
        resolve(false);
      }, ms);
      this.listeners.add(onChange);
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** Short description of a packet for failure messages. */
export function describePacket(packet: Packet): string {
  if (packet.type === 'publish') {
    return `PUBLISH(topic=${packet.topic}, qos=${packet.qos}, retain=${packet.retain}, dup=${packet.dup}, id=${packet.packetId ?? '-'}, ${packet.payload.length} bytes)`;
  }
  if (packet.type === 'connack') return `CONNACK(rc=${packet.reasonCode}, sp=${packet.sessionPresent})`;
  if (packet.type === 'suback') return `SUBACK(id=${packet.packetId}, codes=${packet.reasonCodes.join(',')})`;
  return 'packetId' in packet ? `${packet.type.toUpperCase()}(id=${packet.packetId})` : packet.type.toUpperCase();
}

/**
 * The clients a test file opens (raw and MQTT.js), so its after() can close them all even when a
 * test failed half-way.
 */
export class TestClients {
  private readonly raws = new Set<RawClient>();
  private readonly mqtts = new Set<MqttClient>();

  constructor(private readonly port: () => number) {}

  /** A raw TCP connection, no CONNECT sent. */
  async raw(options: RawClientOptions = {}): Promise<RawClient> {
    await publishesSettled();
    const client = await RawClient.connect(this.port(), options);
    this.raws.add(client);
    return client;
  }

  /** A raw client that sent CONNECT and got CONNACK 0. */
  async rawConnected(fields: ConnectFields = {}): Promise<RawClient> {
    const client = await this.raw();
    const connack = await client.connectMqtt(fields);
    if (connack.reasonCode !== 0) throw new Error(`CONNECT of "${fields.clientId ?? ''}" refused with return code ${connack.reasonCode}`);
    return client;
  }

  /** An MQTT.js client (3.1.1 unless told), connected, never reconnecting by itself. */
  async mqtt(options: IClientOptions = {}): Promise<MqttClient> {
    await publishesSettled();
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.port()}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: DEFAULT_TIMEOUT_MS,
      ...options,
    });
    this.mqtts.add(client);
    return client;
  }

  /** Closes every client still open. */
  async closeAll(): Promise<void> {
    for (const raw of this.raws) raw.destroy();
    this.raws.clear();
    await Promise.all([...this.mqtts].map((client) => client.endAsync(true)));
    this.mqtts.clear();
  }
}

/** Resolves with the next `count` messages an MQTT.js client receives (bounded wait). */
export function collectMessages(
  client: MqttClient,
  count: number,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ topic: string; payload: Buffer; qos: QoS; retain: boolean; dup: boolean }[]> {
  return new Promise((resolve, reject) => {
    const out: { topic: string; payload: Buffer; qos: QoS; retain: boolean; dup: boolean }[] = [];
    const onMessage = (topic: string, payload: Buffer, packet: { qos: QoS; retain: boolean; dup: boolean }): void => {
      out.push({ topic, payload, qos: packet.qos, retain: packet.retain, dup: packet.dup });
      if (out.length === count) {
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(out);
      }
    };
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`received ${out.length} of ${count} messages within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('message', onMessage);
  });
}
