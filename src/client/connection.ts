/**
 * One network connection of the client: decodes inbound packets, batches outbound writes per tick
 * (cork / uncork), and runs the keep-alive (PINGREQ when idle, dead-server detection). It knows
 * nothing of sessions: the client reconnects by making a new Connection.
 */
import type { Duplex } from 'node:stream';
import { PacketDecoder, encodePacket, type Packet, type ProtocolVersion } from '../protocol/index.js';
import { ConnectionError, KeepAliveTimeoutError, ProtocolError } from './errors.js';

/** What a Connection reports to its owner. */
export interface ConnectionEvents {
  onPacket(packet: Packet): void;
  /** Called once, when the stream is gone; `error` is why, if not a clean close. */
  onClose(error: Error | undefined): void;
}

/** Keep-alive checks per keep-alive period: PINGREQ after 3 idle quarters, dead after 4 unanswered. */
const KEEPALIVE_TICKS = 4;

/** A live MQTT byte stream. */
export class Connection {
  readonly version: ProtocolVersion;
  private readonly stream: Duplex;
  private readonly decoder: PacketDecoder;
  private readonly events: ConnectionEvents;
  private corked = false;
  private closed = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private sentSinceTick = false;
  private idleTicks = 0;
  private pingTicks = -1;
  /** One shared wait for 'drain', however many senders wait. */
  private drainWait: Promise<void> | undefined;

  constructor(stream: Duplex, version: ProtocolVersion, events: ConnectionEvents) {
    this.stream = stream;
    this.version = version;
    this.events = events;
    this.decoder = new PacketDecoder({ version });
    const packets: Packet[] = [];
    stream.on('data', (chunk: Buffer) => {
      packets.length = 0;
      try {
        this.decoder.push(chunk, packets);
      } catch (error) {
        for (const p of packets) this.deliver(p);
        this.destroy(new ProtocolError(`bad packet from server: ${(error as Error).message}`, { cause: error }));
        return;
      }
      for (const p of packets) this.deliver(p);
    });
    stream.on('error', (error: Error) => this.destroy(new ConnectionError(`connection error: ${error.message}`, { cause: error })));
    stream.on('close', () => this.destroy(new ConnectionError('connection closed by the server')));
    stream.on('end', () => this.destroy(new ConnectionError('connection closed by the server')));
  }

  /** Why the connection closed, once it has. */
  closeError: Error | undefined;

  /** True while bytes can still be written. */
  get open(): boolean {
    return !this.closed;
  }

  private deliver(packet: Packet): void {
    if (this.closed) return;
    if (packet.type === 'pingresp') {
      this.pingTicks = -1;
      return;
    }
    this.events.onPacket(packet);
  }

  /** Queues `packet` for this tick's write; false when the stream is over its high-water mark. */
  send(packet: Packet): boolean {
    return this.write(encodePacket(packet, this.version));
  }

  /** Queues already-encoded bytes. */
  write(bytes: Buffer): boolean {
    if (this.closed) return false;
    this.sentSinceTick = true;
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    return this.stream.write(bytes);
  }

  /** Resolves when the stream has room again (at once if it has), or when it closes. */
  drained(): Promise<void> {
    if (this.closed || !this.stream.writableNeedDrain) return Promise.resolve();
    this.drainWait ??= new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        this.drainWait = undefined;
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
    });
    return this.drainWait;
  }

  /** Starts the keep-alive for `seconds` (0: none). */
  startKeepAlive(seconds: number): void {
    clearInterval(this.keepAliveTimer);
    if (seconds <= 0 || this.closed) return;
    this.keepAliveTimer = setInterval(() => this.keepAliveTick(seconds), (seconds * 1000) / KEEPALIVE_TICKS);
    this.keepAliveTimer.unref();
  }

  private keepAliveTick(seconds: number): void {
    if (this.pingTicks >= 0 && ++this.pingTicks >= KEEPALIVE_TICKS) {
      this.destroy(new KeepAliveTimeoutError(seconds));
      return;
    }
    if (this.sentSinceTick) {
      this.sentSinceTick = false;
      this.idleTicks = 0;
      return;
    }
    if (++this.idleTicks >= KEEPALIVE_TICKS - 1 && this.pingTicks < 0) {
      this.idleTicks = 0;
      this.pingTicks = 0;
      this.send({ type: 'pingreq' });
      this.sentSinceTick = false;
    }
  }

  /** Sends `last` (e.g. DISCONNECT) if given, then ends the stream gracefully. */
  end(last?: Packet): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (last !== undefined) this.send(last);
    this.closed = true;
    clearInterval(this.keepAliveTimer);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stream.destroy();
        resolve();
      }, 1000);
      timer.unref();
      this.stream.end(() => {
        clearTimeout(timer);
        this.stream.destroy();
        resolve();
      });
      this.events.onClose(undefined);
    });
  }

  /** Drops the connection at once; the owner hears `onClose(error)`. */
  destroy(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = error;
    clearInterval(this.keepAliveTimer);
    this.stream.destroy();
    this.events.onClose(error);
  }
}
