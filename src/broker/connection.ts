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
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  private lastActivity = Date.now();
  /** When the sweep must next look at this connection (connect timeout, then keep-alive). */
  private deadline: number;
  private keepaliveMs = 0;
  private readingPaused = false;

  /** Resumes reading once the peer has drained what we sent. */
  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (this.state !== 'closed') this.stream.resume();
  }

  constructor(
    private readonly ctx: BrokerContext,
    readonly stream: Duplex,
    readonly info: ConnectionInfo,
  ) {
    this.decoder = new PacketDecoder({ maxPacketSize: ctx.options.maxPacketSize });
    // Shared listener functions (no closures per connection): the stream points back at us.
    (stream as LinkedStream)[CONNECTION] = this;
    stream.on('data', onStreamData);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    this.deadline = this.lastActivity + ctx.options.connectTimeout * 1000;
  }

  /** Called by the broker's periodic sweep: enforces the connect timeout and keep-alive. */
  checkTimers(now: number): void {
    if (now < this.deadline) return;
    if (this.state === 'awaiting-connect' || this.state === 'authenticating') {
      this.ctx.logger.info({ remote: this.info.remoteAddress }, 'closing connection: no CONNECT within the connect timeout');
      this.close('connect-timeout');
      return;
    }
    if (this.keepaliveMs === 0) {
      this.deadline = Infinity;
      return;
    }
    const due = this.lastActivity + this.keepaliveMs;
    if (now >= due) {
      // [MQTT-3.1.2-24] no packet within one and a half times the keep alive: disconnect.
      this.ctx.logger.info({ clientId: this.clientId, keepalive: this.keepalive }, 'closing connection: keep-alive timeout [MQTT-3.1.2-24]');
      this.close('keep-alive-timeout');
      return;
    }
    this.deadline = due;
  }

  /** Socket error: logged at debug level (clients vanish all the time), then closed. */
  onError(error: Error): void {
    this.ctx.logger.debug({ clientId: this.clientId, remote: this.info.remoteAddress, err: error.message }, 'socket error');
    this.close('socket-error');
  }

  /** Processes one chunk of bytes from the stream. */
  onData(chunk: Buffer): void {
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

  /** Bytes queued for this connection and not yet taken by the peer (ours plus the stream's). */
  get bufferedBytes(): number {
    return this.pendingBytes + this.stream.writableLength;
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
    if (this.pending === undefined) this.pending = [bytes];
    else this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.ctx.scheduleFlush(this);
    }
  }

  /** Writes everything queued in one call to the stream. */
  flush(): void {
    this.flushQueued = false;
    const pending = this.pending;
    if (pending === undefined || this.stream.destroyed) return;
    const bytes = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, this.pendingBytes);
    this.ctx.stats.bytesSent += bytes.length;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (!this.stream.write(bytes) && !this.readingPaused && this.state === 'connected' && this.stream.writableLength > PAUSE_READING_AT) {
      // The peer is not reading what we send: stop reading what it sends until it catches up.
      this.readingPaused = true;
      this.stream.pause();
      this.stream.once('drain', onStreamDrain);
    }
  }

  /** Starts keep-alive enforcement at 1.5 times the client's interval [MQTT-3.1.2-24]. */
  startKeepAlive(seconds: number): void {
    this.keepalive = seconds;
    this.keepaliveMs = seconds * 1500;
    this.deadline = seconds > 0 ? this.lastActivity + this.keepaliveMs : Infinity;
  }

  /** Ends the connection; the broker decides what happens to the session and the will. */
  close(reason: CloseReason): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.backlog = undefined;
    if (this.pending !== undefined && !this.stream.destroyed) this.flush();
    this.pending = undefined;
    this.pendingBytes = 0;
    this.stream.end();
    // Give the peer a moment to read a final CONNACK, then make sure the socket is gone.
    const stream = this.stream;
    if (!stream.destroyed) setTimeout(() => stream.destroy(), 1000).unref();
    this.ctx.connectionClosed(this, reason, wasConnected);
  }
}

const CONNECTION = Symbol('starling.connection');
type LinkedStream = Duplex & { [CONNECTION]: Connection };

function onStreamData(this: Duplex, chunk: Buffer): void {
  (this as LinkedStream)[CONNECTION].onData(chunk);
}

function onStreamError(this: Duplex, error: Error): void {
  (this as LinkedStream)[CONNECTION].onError(error);
}

function onStreamClose(this: Duplex): void {
  (this as LinkedStream)[CONNECTION].close('socket-closed');
}

function onStreamDrain(this: Duplex): void {
  (this as LinkedStream)[CONNECTION].resumeReading();
}
