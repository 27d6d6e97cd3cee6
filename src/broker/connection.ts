import type { Duplex } from 'node:stream';
import type { Message } from '../model/message.js';
import { PacketDecoder } from '../protocol/decoder.js';
import { encodePacket } from '../protocol/encoder.js';
import { MqttError, UnsupportedProtocolVersionError } from '../protocol/errors.js';
import { ConnackReturnCode } from '../protocol/reason-codes.js';
import type { Packet, ProtocolVersion, QoS } from '../protocol/types.js';
import type { BrokerContext } from './context.js';
import { handlePacket } from './handlers/index.js';
import type { Session, SessionLink } from './session.js';

/** Bytes waiting in the socket beyond which we stop reading from that peer until it drains. */
const PAUSE_READING_AT = 1024 * 1024;

/** Where a connection came from, as told by its transport. */
export interface ConnectionInfo {
  /** Listener name, e.g. "tcp". */
  listener: string;
  remoteAddress?: string;
  remotePort?: number;
}

/** Lifecycle of one connection. */
export type ConnectionState = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed';

/** Why a connection ended; named in logs. */
export type CloseReason =
  | 'client-disconnect'
  | 'socket-closed'
  | 'socket-error'
  | 'protocol-error'
  | 'keep-alive-timeout'
  | 'connect-timeout'
  | 'session-taken-over'
  | 'connect-refused'
  | 'server-shutdown'
  | 'administrative';

/**
 * One client stream: feeds bytes to the decoder and packets to the handlers, batches writes per
 * event-loop turn, enforces connect timeout and keep-alive. MQTT semantics live in the handlers
 * and the session.
 */
export class Connection implements SessionLink {
  state: ConnectionState = 'awaiting-connect';
  version: ProtocolVersion = 4;
  clientId = '';
  username: string | undefined;
  keepalive = 0;
  session: Session | undefined;
  /** Packets that arrived while an asynchronous CONNECT check was running. */
  backlog: Packet[] | undefined;
  /** True once this connection is in the broker's flush list for this turn. */
  flushQueued = false;
  readonly connectedAt = Date.now();

  private readonly decoder: PacketDecoder;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private lastActivity = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private keepaliveMs = 0;
  private readingPaused = false;

  constructor(
    private readonly ctx: BrokerContext,
    readonly stream: Duplex,
    readonly info: ConnectionInfo,
  ) {
    this.decoder = new PacketDecoder({ maxPacketSize: ctx.options.maxPacketSize });
    stream.on('data', (chunk: Buffer) => {
      this.onData(chunk);
    });
    stream.on('error', (error: Error) => {
      this.ctx.logger.debug({ clientId: this.clientId, remote: this.info.remoteAddress, err: error.message }, 'socket error');
      this.close('socket-error');
    });
    stream.on('close', () => {
      this.close('socket-closed');
    });
    stream.on('end', () => {
      this.close('socket-closed');
    });
    stream.on('drain', () => {
      if (this.readingPaused) {
        this.readingPaused = false;
        this.stream.resume();
      }
    });
    this.arm(ctx.options.connectTimeout * 1000);
  }

  /** Processes one chunk of bytes from the stream. */
  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastActivity = Date.now();
    this.ctx.stats.bytesReceived += chunk.length;
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    for (let i = 0; i < packets.length; i++) {
      if (this.isClosed()) return;
      const packet = packets[i] as Packet;
      if (this.backlog !== undefined) {
        this.backlog.push(packet);
        continue;
      }
      try {
        handlePacket(this.ctx, this, packet);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
  }

  /** True once the connection has ended (a handler may close it mid-loop). */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Runs packets that were held back while CONNECT was being checked. */
  replayBacklog(): void {
    const backlog = this.backlog;
    this.backlog = undefined;
    if (backlog === undefined) return;
    for (const packet of backlog) {
      if (this.isClosed()) return;
      try {
        handlePacket(this.ctx, this, packet);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
  }

  /** Closes the connection for a protocol error, naming the client and the rule in the log. */
  fail(error: unknown): void {
    if (this.state === 'closed') return;
    this.ctx.stats.protocolErrors++;
    if (error instanceof UnsupportedProtocolVersionError && this.state === 'awaiting-connect') {
      this.ctx.stats.connectionsRefused++;
      this.ctx.logger.info(
        { remote: this.info.remoteAddress, requestedVersion: error.requestedVersion },
        `connection refused: ${error.message}`,
      );
      // [MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 before the close;
      // an unknown protocol name is closed without CONNACK [MQTT-3.1.2-1].
      if (error.nameRecognised) this.send({ type: 'connack', sessionPresent: false, reasonCode: ConnackReturnCode.unacceptableProtocolVersion });
      this.close('connect-refused');
      return;
    }
    if (error instanceof MqttError) {
      this.ctx.logger.warn(
        { clientId: this.clientId || undefined, remote: this.info.remoteAddress, code: error.code, reasonCode: error.reasonCode },
        `closing connection: ${error.message}`,
      );
    } else {
      this.ctx.logger.error({ clientId: this.clientId || undefined, remote: this.info.remoteAddress, err: error }, 'closing connection: internal error');
    }
    this.close('protocol-error');
  }

  /** Encodes and queues a control packet. */
  send(packet: Packet): void {
    this.write(encodePacket(packet, this.version));
  }

  /** SessionLink: sends a PUBLISH using the broker's shared encoding of the message. */
  sendPublish(message: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean): boolean {
    if (this.state !== 'connected') return false;
    if (qos === 0 && this.pendingBytes + this.stream.writableLength > this.ctx.options.maxWriteBuffer) {
      this.ctx.stats.droppedBufferFull++;
      return false;
    }
    const wire = this.ctx.wire;
    const form = wire.get(message, this.version, qos, retain);
    if (qos === 0) {
      this.write(form);
    } else {
      const copy = Buffer.allocUnsafe(form.length);
      form.copy(copy, 0);
      const offset = wire.packetIdOffset(qos, retain);
      copy[offset] = packetId >> 8;
      copy[offset + 1] = packetId & 0xff;
      if (dup) copy[0] = (copy[0] as number) | 0x08;
      this.write(copy);
    }
    this.ctx.stats.messagesSent++;
    return true;
  }

  /** SessionLink: sends PUBREL for an outgoing QoS 2 message. */
  sendPubrel(packetId: number): void {
    this.send({ type: 'pubrel', packetId });
  }

  /** Queues bytes; they are written with everything else queued this turn. */
  write(bytes: Buffer): void {
    if (this.state === 'closed') return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.ctx.scheduleFlush(this);
    }
  }

  /** Writes everything queued in one call to the stream. */
  flush(): void {
    this.flushQueued = false;
    const count = this.pending.length;
    if (count === 0 || this.stream.destroyed) return;
    const bytes = count === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    this.ctx.stats.bytesSent += bytes.length;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.stream.write(bytes) && !this.readingPaused && this.state === 'connected' && this.stream.writableLength > PAUSE_READING_AT) {
      // The peer is not reading what we send: stop reading what it sends until it catches up.
      this.readingPaused = true;
      this.stream.pause();
    }
  }

  /** Starts keep-alive enforcement at 1.5 times the client's interval [MQTT-3.1.2-24]. */
  startKeepAlive(seconds: number): void {
    this.keepalive = seconds;
    this.keepaliveMs = seconds * 1500;
    this.disarm();
    if (seconds > 0) this.arm(this.keepaliveMs);
  }

  /** Ends the connection; the broker decides what happens to the session and the will. */
  close(reason: CloseReason): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.disarm();
    this.backlog = undefined;
    if (this.pending.length > 0 && !this.stream.destroyed) this.flush();
    this.pending = [];
    this.pendingBytes = 0;
    this.stream.end();
    // Give the peer a moment to read a final CONNACK, then make sure the socket is gone.
    const stream = this.stream;
    if (!stream.destroyed) setTimeout(() => stream.destroy(), 1000).unref();
    this.ctx.connectionClosed(this, reason, wasConnected);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.onTimer();
    }, ms);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.state === 'closed') return;
    if (this.state === 'awaiting-connect' || this.state === 'authenticating') {
      this.ctx.logger.info({ remote: this.info.remoteAddress }, 'closing connection: no CONNECT within the connect timeout');
      this.close('connect-timeout');
      return;
    }
    const idle = Date.now() - this.lastActivity;
    if (idle >= this.keepaliveMs) {
      this.ctx.logger.info({ clientId: this.clientId, keepalive: this.keepalive }, 'closing connection: keep-alive timeout [MQTT-3.1.2-24]');
      this.close('keep-alive-timeout');
      return;
    }
    this.arm(this.keepaliveMs - idle);
  }
}
