/** The write side of a client connection: packets queued and written once per turn, acknowledgements in commit order, PUBLISH sends, write backpressure. */
import type { Duplex } from 'node:stream';
import type { Message } from '../model/message.js';
import { encodePacket } from '../protocol/encoder.js';
import { ReasonCode } from '../protocol/reason-codes.js';
import type { Packet, ProtocolVersion } from '../protocol/types.js';
import { AckQueue, type Held, type HeldSender } from './ack-queue.js';
import type { Core } from './context.js';
import { SendResult, type OutgoingFlight, type Route, type SessionLink } from './delivery.js';
import type { CloseReason } from './outcomes.js';
import { PublishEncoder } from './publish-encoder.js';
import type { CommitWaiter, Flushable } from './turn.js';

/** Bytes waiting in the socket beyond which we stop reading from that peer until it drains. */
const PAUSE_READING_AT = 1024 * 1024;

/** Lifecycle of one connection. */
export type ConnectionState = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed';

/**
 * Everything a connection sends. Bytes queued during a turn are written in one call at its end
 * (`Turn.flushAtEnd`); a peer that does not read what it is sent is not read from either.
 */
export abstract class ConnectionWriter implements SessionLink, Flushable, CommitWaiter, HeldSender {
  protected current: ConnectionState = 'awaiting-connect';
  version: ProtocolVersion = 4;
  clientId = '';
  /** MQTT 5: the largest packet the client accepts (Maximum Packet Size), Infinity if unlimited. */
  maxPacketSize = Infinity;
  /** MQTT 5: topic aliases the client accepts from us. */
  protected topicAliasMaximum = 0;
  /** Made at the first PUBLISH sent: a device that only publishes never needs one. */
  private encoder: PublishEncoder | undefined;
  protected readingPaused = false;
  /** Reading is paused by the publish rate limit. */
  protected throttled = false;
  private acks: AckQueue | undefined;
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  private flushQueued = false;

  constructor(
    protected readonly core: Core,
    readonly stream: Duplex,
  ) {}

  /** Ends the connection. */
  abstract close(reason: CloseReason, reasonCode?: number, reasonString?: string): void;

  /** True once the connection has ended (a handler may close it mid-loop). */
  isClosed(): boolean {
    return this.current === 'closed';
  }

  /** Bytes queued for this connection and not yet taken by the peer (ours plus the stream's). */
  get bufferedBytes(): number {
    return this.pendingBytes + this.stream.writableLength;
  }

  /**
   * Sends an acknowledgement (PUBACK, PUBREC, PUBCOMP; SUBACK in a cluster) in order: a durable one
   * waits for the commit of what its message changed in the store, and every later one waits behind
   * it [MQTT-4.6.0-2..4].
   */
  sendAck(packet: Held, durable: boolean): void {
    const acks = this.acks;
    const waiting = acks !== undefined && !acks.empty;
    const turn = this.core.turn;
    const gen = durable ? turn.pendingGen : waiting ? acks.lastGen : 0;
    if (!waiting && gen <= turn.committedGen) {
      this.sendHeld(packet);
      return;
    }
    (this.acks ??= new AckQueue()).push(packet, gen);
    turn.waitForCommit(this);
  }

  /** HeldSender: an acknowledgement (or PUBLISH) whose commit is done. */
  sendHeld(item: Held): void {
    if (Buffer.isBuffer(item)) this.write(item);
    else this.send(item);
  }

  /** CommitWaiter: sends the acknowledgements whose commit is done; true when none is left waiting. */
  commitDone(gen: number): boolean {
    return this.isClosed() || this.acks === undefined || this.acks.release(gen, this);
  }

  /** CommitWaiter: a commit failed; a connection whose acknowledgements depended on it is closed, never acknowledged [MQTT-4.8.0-2]. */
  commitFailed(gen: number): boolean {
    if (this.isClosed()) return true;
    if (this.acks === undefined || !this.acks.waitsFor(gen)) return false;
    this.close('store-failure');
    return true;
  }

  /** Encodes and queues a control packet (never larger than an MQTT 5 client accepts [MQTT-3.1.2-24]). */
  send(packet: Packet): void {
    let bytes = encodePacket(packet, this.version);
    if (bytes.length > this.maxPacketSize && 'properties' in packet && packet.properties?.reasonString !== undefined) {
      // A Reason String must not push a packet past the client's Maximum Packet Size [MQTT-3.2.2-19]: drop it.
      const { reasonString: _dropped, ...properties } = packet.properties;
      bytes = encodePacket({ ...packet, properties }, this.version);
    }
    if (bytes.length > this.maxPacketSize) {
      this.core.stats.droppedTooLarge++;
      this.core.logger.warn({ clientId: this.clientId, packet: packet.type, bytes: bytes.length, max: this.maxPacketSize }, 'packet not sent: larger than the client accepts');
      // Without its CONNACK the connection is useless: close it rather than leave it hanging.
      if (packet.type === 'connack') this.close('protocol-error', ReasonCode.packetTooLarge);
      return;
    }
    this.write(bytes);
  }

  /** SessionLink: a QoS 0 PUBLISH, dropped (counted) when the client's write buffer is full. */
  sendAtMostOnce(message: Message, retain: boolean, route: Route): SendResult {
    if (this.current !== 'connected') return SendResult.offline;
    if (this.pendingBytes + this.stream.writableLength > this.core.options.maxWriteBuffer) {
      this.core.stats.droppedBufferFull++;
      return SendResult.bufferFull;
    }
    return this.sendPublish(message, 0, retain, route, 0, false, false);
  }

  /** SessionLink: the PUBLISH of a QoS 1/2 flight. */
  sendFlight(flight: OutgoingFlight, dup: boolean, stored: boolean): SendResult {
    if (this.current !== 'connected') return SendResult.offline;
    return this.sendPublish(flight.message, flight.qos, flight.retain, flight.route, flight.packetId, dup, stored);
  }

  private sendPublish(message: Message, qos: 0 | 1 | 2, retain: boolean, route: Route, packetId: number, dup: boolean, stored: boolean): SendResult {
    const encoder = (this.encoder ??= new PublishEncoder(this.core.wire, this.version, this.maxPacketSize, this.topicAliasMaximum));
    const now = message.expiresAt === undefined && this.version !== 5 ? 0 : Date.now();
    // [MQTT-3.3.2-5] an expired message is not sent, whatever the subscriber's version; once a PUBLISH
    // has gone out, expiry no longer applies and a retransmission is sent [MQTT-4.3.3-7].
    if (!dup && message.expiresAt !== undefined && now >= message.expiresAt) {
      this.core.stats.droppedExpired++;
      return SendResult.expired;
    }
    const bytes = encoder.encode(message, qos, retain, route, packetId, dup, now);
    if (bytes === undefined) {
      // [MQTT-3.1.2-25] never send a packet larger than the client's Maximum Packet Size: discard it.
      this.core.stats.droppedTooLarge++;
      return SendResult.tooLarge;
    }
    // A first QoS 2 send of a stored delivery waits for its commit: were the broker to die before,
    // the publisher would resend and the subscriber get the message twice. Anything sent after it
    // waits behind it, so the order of deliveries is kept.
    const hold = stored && qos === 2 && !dup && this.core.options.durableAcks;
    if (hold || (this.acks !== undefined && !this.acks.empty)) this.sendAck(bytes, hold);
    else this.write(bytes);
    const stats = this.core.stats;
    stats.messagesSent++;
    stats.messagesSentByQos[qos]++;
    return SendResult.sent;
  }

  /**
   * SessionLink: sends PUBREL for an outgoing QoS 2 message. After PUBREL the PUBLISH is never sent
   * again [MQTT-4.3.3-1] and the client may deliver the message onwards: so the PUBREL stage must
   * be durable first, or a restart (or the cluster node taking the session over) would resend the
   * PUBLISH and the client deliver it twice.
   */
  sendPubrel(packetId: number, stored: boolean): void {
    const hold = stored && this.core.options.durableAcks;
    if (hold || (this.acks !== undefined && !this.acks.empty)) this.sendAck({ type: 'pubrel', packetId }, hold);
    else this.send({ type: 'pubrel', packetId });
  }

  /** Queues bytes; they are written with everything else queued this turn. */
  write(bytes: Buffer): void {
    if (this.current === 'closed') return;
    if (this.pending === undefined) this.pending = [bytes];
    else this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.core.turn.flushAtEnd(this);
    }
  }

  /** Drops what was queued and not written (the connection is closing). */
  protected discardPending(): void {
    if (this.pending !== undefined && !this.stream.destroyed) this.flush();
    this.pending = undefined;
    this.pendingBytes = 0;
  }

  /** Flushable: writes everything queued in one call to the stream. */
  flush(): void {
    this.flushQueued = false;
    const pending = this.pending;
    if (pending === undefined || this.stream.destroyed) return;
    const bytes = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, this.pendingBytes);
    this.core.stats.bytesSent += bytes.length;
    this.pending = undefined;
    this.pendingBytes = 0;
    if (!this.stream.write(bytes) && !this.readingPaused && this.current === 'connected' && this.stream.writableLength > PAUSE_READING_AT) {
      // The peer is not reading what we send: stop reading what it sends until it catches up.
      this.readingPaused = true;
      this.stream.pause();
      this.stream.once('drain', onStreamDrain);
    }
  }

  /** Resumes reading once the peer has drained what we sent. */
  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    if (this.current !== 'closed' && !this.throttled) this.stream.resume();
  }
}

/** The stream's link back to its connection: listeners are shared functions, not closures per connection. */
export const CONNECTION = Symbol('starling.connection');
/** A stream linked to its connection. */
export type LinkedStream = Duplex & { [CONNECTION]: ConnectionWriter };

function onStreamDrain(this: Duplex): void {
  (this as LinkedStream)[CONNECTION].resumeReading();
}
