import type { Duplex } from 'node:stream';
import type { Message } from '../model/message.js';
import { PacketDecoder } from '../protocol/decoder.js';
import { encodePacket, encodePublish } from '../protocol/encoder.js';
import { MqttError, UnsupportedProtocolVersionError } from '../protocol/errors.js';
import { ConnackReturnCode, ReasonCode } from '../protocol/reason-codes.js';
import type { Packet, Properties, ProtocolVersion, PublishPacket, QoS } from '../protocol/types.js';
import { publishProperties } from './wire-cache.js';
import type { BrokerContext } from './context.js';
import { handlePacket } from './handlers/index.js';
import type { PendingAuth } from './handlers/auth.js';
import type { ClientIdentity } from './hooks.js';
import { SendResult, type Session, type SessionLink } from './session.js';

/** An acknowledgement waiting for store commit number `gen`. */
interface PendingAck {
  /** A control packet, or an encoded PUBLISH held back with the acknowledgements (see sendPublish). */
  packet: Packet | Buffer;
  gen: number;
}

/** The reason code of the DISCONNECT an MQTT 5 client gets when the server closes for this reason. */
const SERVER_DISCONNECT_REASONS: Partial<Record<CloseReason, number>> = {
  'keep-alive-timeout': ReasonCode.keepAliveTimeout,
  'session-taken-over': ReasonCode.sessionTakenOver,
  'server-shutdown': ReasonCode.serverShuttingDown,
  administrative: ReasonCode.administrativeAction,
  'protocol-error': ReasonCode.protocolError,
};

/** Bytes waiting in the socket beyond which we stop reading from that peer until it drains. */
const PAUSE_READING_AT = 1024 * 1024;

/** Where a connection came from, as told by its transport. */
export interface ConnectionInfo {
  /** Listener name, e.g. "tcp". */
  listener: string;
  remoteAddress?: string;
  remotePort?: number;
  /** Subject fields of a verified TLS client certificate. */
  certificateSubject?: Readonly<Record<string, string>>;
}

/** Lifecycle of one connection. */
export type ConnectionState = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed';

/** Why a connection ended; named in logs. */
export type CloseReason =
  | 'client-disconnect'
  | 'client-disconnect-with-will'
  | 'socket-closed'
  | 'socket-error'
  | 'protocol-error'
  | 'keep-alive-timeout'
  | 'connect-timeout'
  | 'session-taken-over'
  | 'connect-refused'
  | 'server-shutdown'
  | 'administrative'
  | 'store-failure';

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
  /** An MQTT 5 enhanced-authentication exchange in progress. */
  pendingAuth: PendingAuth | undefined;
  /** The Authentication Method the client connected with (for re-authentication). */
  authMethod: string | undefined;
  /** Who the client is, for plugins; set when CONNECT is accepted. */
  identity: ClientIdentity | undefined;
  /** Packets that arrived while an asynchronous CONNECT check was running. */
  private backlog: Packet[] | undefined;
  /** Asynchronous checks (authentication, authorization) and throttles holding packets back. */
  private holds = 0;
  /** MQTT 5: the largest packet the client accepts (Maximum Packet Size), Infinity if unlimited. */
  clientMaxPacketSize = Infinity;
  /** MQTT 5: how many topic aliases the client accepts from us. */
  clientTopicAliasMax = 0;
  /** MQTT 5: topic aliases the client set towards us (index = alias). */
  aliasIn: (string | undefined)[] | undefined;
  /** Acknowledgements waiting for a store commit, in order. */
  private ackQueue: PendingAck[] | undefined;
  /** MQTT 5: topic aliases we assigned towards the client. */
  private aliasOut: Map<string, number> | undefined;
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
  private throttled = false;
  private rateLogged = false;
  private rateWindowStart = 0;
  private rateMessages = 0;
  private rateBytes = 0;

  /**
   * Publish rate limit (token buckets of one second): when a client goes past maxPublishRate messages
   * or maxPublishBytesRate bytes per second, reading from it pauses until the second is over. The
   * client is slowed down, nothing is dropped.
   */
  throttlePublish(bytes: number): void {
    const now = Date.now();
    if (now - this.rateWindowStart >= 1000) {
      this.rateWindowStart = now;
      this.rateMessages = 0;
      this.rateBytes = 0;
    }
    this.rateMessages++;
    this.rateBytes += bytes;
    const options = this.ctx.options;
    const over = (options.maxPublishRate > 0 && this.rateMessages >= options.maxPublishRate) || (options.maxPublishBytesRate > 0 && this.rateBytes >= options.maxPublishBytesRate);
    if (!over || this.throttled) return;
    this.throttled = true;
    this.ctx.stats.rateLimited++;
    if (!this.rateLogged) {
      // Once per connection, so a steady over-publisher does not flood the log.
      this.rateLogged = true;
      this.ctx.logger.info(
        { clientId: this.clientId, maxPublishRate: options.maxPublishRate, maxPublishBytesRate: options.maxPublishBytesRate },
        'publish rate limit reached: client slowed down (further occurrences counted in starling_rate_limited_total)',
      );
    }
    // Stop reading, and hold the packets already read, until the window is over.
    this.stream.pause();
    this.holdPackets();
    setTimeout(() => {
      this.throttled = false;
      if (this.isClosed()) return;
      this.releaseHold();
      if (!this.readingPaused && !this.throttled) this.stream.resume();
    }, Math.max(1, this.rateWindowStart + 1000 - now)).unref();
  }

  /** Resumes reading once the peer has drained what we sent. */
  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (this.state !== 'closed' && !this.throttled) this.stream.resume();
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
    this.ctx.stats.bytesReceived += chunk.length;
    let packets: Packet[];
    try {
      packets = this.decoder.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    // Keep-alive counts complete control packets, not bytes [MQTT-3.1.2-24].
    if (packets.length > 0) this.lastActivity = Date.now();
    for (let i = 0; i < packets.length; i++) {
      if (this.isClosed()) return;
      const packet = packets[i] as Packet;
      if (this.holds > 0) {
        (this.backlog ??= []).push(packet);
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

  /** Holds back further packets (in order) until the matching `releaseHold`: an asynchronous check is running. */
  holdPackets(): void {
    this.holds++;
  }

  /** Ends one hold; when none is left, the packets held back are processed in order. */
  releaseHold(): void {
    if (this.holds > 0) this.holds--;
    if (this.holds > 0) return;
    const backlog = this.backlog;
    this.backlog = undefined;
    if (backlog === undefined) return;
    for (let i = 0; i < backlog.length; i++) {
      if (this.isClosed()) return;
      try {
        handlePacket(this.ctx, this, backlog[i] as Packet);
      } catch (error) {
        this.fail(error);
        return;
      }
      if (this.holds > 0) {
        // A packet started another hold: the rest waits again, in order, before anything newer.
        this.backlog = backlog.slice(i + 1).concat(this.backlog ?? []);
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
    // MQTT 5 clients are told the rule in a Reason String (a diagnostic, always allowed on DISCONNECT).
    if (error instanceof MqttError) this.close('protocol-error', error.reasonCode, error.message);
    else this.close('protocol-error', ReasonCode.unspecifiedError);
  }

  /**
   * Sends an acknowledgement (PUBACK, PUBREC, PUBCOMP) in order: a durable one waits for the commit
   * of what its message changed in the store, and every later one waits behind it [MQTT-4.6.0-2..4].
   */
  sendAck(packet: Packet | Buffer, durable: boolean): void {
    const queue = this.ackQueue;
    const waiting = queue !== undefined && queue.length > 0;
    let gen = 0;
    if (durable) gen = this.ctx.pendingCommitGen;
    else if (waiting) gen = (queue[queue.length - 1] as PendingAck).gen;
    if (!waiting && gen <= this.ctx.committedGen) {
      if (Buffer.isBuffer(packet)) this.write(packet);
      else this.send(packet);
      return;
    }
    (this.ackQueue ??= []).push({ packet, gen });
    this.ctx.waitForCommit(this);
  }

  /** True when an acknowledgement waits for store commit `gen` or an earlier one. */
  waitsForCommit(gen: number): boolean {
    const first = this.ackQueue?.[0];
    return first !== undefined && first.gen <= gen;
  }

  /** Sends the acknowledgements whose commit is done; returns true when none is left waiting. */
  releaseAcks(committedGen: number): boolean {
    const queue = this.ackQueue;
    if (queue === undefined) return true;
    let i = 0;
    while (i < queue.length && (queue[i] as PendingAck).gen <= committedGen) {
      const packet = (queue[i++] as PendingAck).packet;
      if (Buffer.isBuffer(packet)) this.write(packet);
      else this.send(packet);
    }
    if (i === queue.length) {
      this.ackQueue = undefined;
      return true;
    }
    queue.splice(0, i);
    return false;
  }

  /** Encodes and queues a control packet (never larger than an MQTT 5 client accepts [MQTT-3.1.2-24]). */
  send(packet: Packet): void {
    let bytes = encodePacket(packet, this.version);
    if (bytes.length > this.clientMaxPacketSize && 'properties' in packet && packet.properties?.reasonString !== undefined) {
      // A Reason String must not push a packet past the client's Maximum Packet Size [MQTT-3.2.2-19]: drop it.
      const { reasonString: _dropped, ...properties } = packet.properties;
      bytes = encodePacket({ ...packet, properties }, this.version);
    }
    if (bytes.length > this.clientMaxPacketSize) {
      this.ctx.stats.droppedTooLarge++;
      this.ctx.logger.warn({ clientId: this.clientId, packet: packet.type, bytes: bytes.length, max: this.clientMaxPacketSize }, 'packet not sent: larger than the client accepts');
      // Without its CONNACK the connection is useless: close it rather than leave it hanging.
      if (packet.type === 'connack') this.close('protocol-error', ReasonCode.packetTooLarge);
      return;
    }
    this.write(bytes);
  }

  /** SessionLink: sends a PUBLISH using the broker's shared encoding of the message where it can. */
  sendPublish(message: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean, subscriptionIds: number[] | undefined, stored = false): SendResult {
    if (this.state !== 'connected') return SendResult.offline;
    if (qos === 0 && this.pendingBytes + this.stream.writableLength > this.ctx.options.maxWriteBuffer) {
      this.ctx.stats.droppedBufferFull++;
      return SendResult.bufferFull;
    }
    const now = message.expiresAt === undefined && this.version !== 5 ? 0 : Date.now();
    // [MQTT-3.3.2-5] an expired message is not sent, whatever the subscriber's version; once a PUBLISH
    // has gone out, expiry no longer applies and a retransmission is sent [MQTT-4.3.3-7].
    if (!dup && message.expiresAt !== undefined && now >= message.expiresAt) {
      this.ctx.stats.droppedExpired++;
      return SendResult.expired;
    }
    let bytes: Buffer;
    if (this.version !== 5) {
      bytes = this.shared(message, qos, retain, packetId, dup, 0);
    } else {
      if (subscriptionIds === undefined && this.clientTopicAliasMax === 0) {
        bytes = this.shared(message, qos, retain, packetId, dup, now);
      } else {
        const encoded = this.encodeOwn(message, qos, retain, packetId, dup, subscriptionIds, now);
        if (encoded === undefined) return SendResult.tooLarge;
        bytes = encoded;
      }
    }
    if (bytes.length > this.clientMaxPacketSize) {
      // [MQTT-3.1.2-25] never send a packet larger than the client's Maximum Packet Size: discard it.
      this.ctx.stats.droppedTooLarge++;
      return SendResult.tooLarge;
    }
    const queue = this.ackQueue;
    // A first QoS 2 send of a stored delivery waits for its commit: were the broker to die before,
    // the publisher would resend and the subscriber get the message twice. Anything sent after it
    // waits behind it, so the order of deliveries is kept.
    const hold = stored && qos === 2 && !dup && this.ctx.options.durableAcks;
    if (hold || (queue !== undefined && queue.length > 0)) this.sendAck(bytes, hold);
    else this.write(bytes);
    this.ctx.stats.messagesSent++;
    this.ctx.stats.messagesSentByQos[qos]++;
    return SendResult.sent;
  }

  /** The broker-wide encoding of the message, copied and patched only for a packet id or DUP. */
  private shared(message: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean, now: number): Buffer {
    const wire = this.ctx.wire;
    const form = wire.get(message, this.version, qos, retain, now);
    if (qos === 0) return form;
    const copy = Buffer.allocUnsafe(form.length);
    form.copy(copy, 0);
    const offset = wire.packetIdOffset(this.version, qos, retain);
    copy[offset] = packetId >> 8;
    copy[offset + 1] = packetId & 0xff;
    if (dup) copy[0] = (copy[0] as number) | 0x08;
    return copy;
  }

  /** MQTT 5 encoding for this subscriber alone: its subscription identifiers and topic alias. */
  private encodeOwn(message: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean, subscriptionIds: number[] | undefined, now: number): Buffer | undefined {
    const properties: Properties = { ...publishProperties(message, now) };
    if (subscriptionIds !== undefined) properties.subscriptionIdentifiers = subscriptionIds;
    let topic = message.topic;
    let assigned = false;
    if (this.clientTopicAliasMax > 0) {
      // Server-to-client topic aliases: a repeated topic is sent as its alias alone.
      this.aliasOut ??= new Map();
      const alias = this.aliasOut.get(topic);
      if (alias !== undefined) {
        properties.topicAlias = alias;
        topic = '';
      } else if (this.aliasOut.size < this.clientTopicAliasMax) {
        properties.topicAlias = this.aliasOut.size + 1;
        this.aliasOut.set(topic, properties.topicAlias);
        assigned = true;
      }
    }
    const packet: PublishPacket = { type: 'publish', topic, payload: message.payload, qos, retain, dup, properties };
    if (qos > 0) packet.packetId = packetId;
    const bytes = encodePublish(packet, 5);
    if (bytes.length > this.clientMaxPacketSize) {
      if (assigned) this.aliasOut?.delete(message.topic); // the client never learns this alias
      this.ctx.stats.droppedTooLarge++;
      return undefined;
    }
    return bytes;
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
  close(reason: CloseReason, reasonCode?: number, reasonString?: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    if (wasConnected && this.version === 5) {
      // MQTT 5: the server says why it closes; only after a successful CONNACK [MQTT-3.14.0-1].
      const code = reasonCode ?? SERVER_DISCONNECT_REASONS[reason];
      if (code !== undefined) {
        this.send(reasonString === undefined ? { type: 'disconnect', reasonCode: code } : { type: 'disconnect', reasonCode: code, properties: { reasonString } });
      }
    }
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
