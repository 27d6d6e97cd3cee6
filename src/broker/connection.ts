/** One client stream: bytes in through the decoder to the handlers, packets out in one write per turn, backpressure, keep-alive, the close. */
import type { Duplex } from 'node:stream';
import { PacketDecoder } from '../protocol/decoder.js';
import { MqttError, UnsupportedProtocolVersionError } from '../protocol/errors.js';
import { ReasonCode } from '../protocol/reason-codes.js';
import type { ConnectPacket, Packet } from '../protocol/types.js';
import { CONNECTION, ConnectionWriter, type ConnectionState, type LinkedStream } from './connection-writer.js';
import type { Core } from './context.js';
import { handlePacket } from './handlers/index.js';
import type { PendingAuth } from './handlers/auth.js';
import type { ClientIdentity } from './hooks.js';
import { CLOSE_REASON_CODES, ConnectRefusal, type CloseReason } from './outcomes.js';
import { PublishRateLimiter } from './rate-limit.js';
import type { Session } from './session.js';
import { InboundTopicAliases } from './topic-aliases.js';

export type { CloseReason } from './outcomes.js';
export type { ConnectionState } from './connection-writer.js';

/** Where a connection came from, as told by its transport. */
export interface ConnectionInfo {
  /** Listener name, e.g. "tcp". */
  listener: string;
  remoteAddress?: string;
  remotePort?: number;
  /** Subject fields of a verified TLS client certificate. */
  certificateSubject?: Readonly<Record<string, string>>;
}

/** What a connection becomes once its CONNECT is accepted. */
export interface Accepted {
  session: Session;
  identity: ClientIdentity;
  /** The keep-alive in force (the client's, or the Server Keep Alive we told it). */
  keepalive: number;
  /** MQTT 5: topic aliases the client accepts from us. */
  topicAliasMaximum: number;
  /** MQTT 5: the method of an enhanced authentication (for re-authentication). */
  authMethod: string | undefined;
}

/**
 * One client stream: its read side, its lifecycle, and the per-connection protocol state the
 * handlers change through named methods (the write side is ConnectionWriter). MQTT semantics live in
 * the handlers and the session.
 */
export class Connection extends ConnectionWriter {
  username: string | undefined;
  keepalive = 0;
  session: Session | undefined;
  /** Who the client is, for plugins; set when CONNECT is accepted. */
  identity: ClientIdentity | undefined;
  /** The Authentication Method the client connected with (for re-authentication). */
  authMethod: string | undefined;
  /** An MQTT 5 enhanced-authentication exchange in progress. */
  pendingAuth: PendingAuth | undefined;
  readonly connectedAt = Date.now();

  private readonly decoder: PacketDecoder;
  private aliasesIn: InboundTopicAliases | undefined;
  private limiter: PublishRateLimiter | undefined;
  /** Packets that arrived while an asynchronous check was running. */
  private backlog: Packet[] | undefined;
  /** Asynchronous checks (authentication, authorization, a claim) and throttles holding packets back. */
  private holds = 0;
  private lastActivity = Date.now();
  /** When the sweep must next look at this connection (connect timeout, then keep-alive). */
  private deadline: number;
  private keepaliveMs = 0;

  constructor(
    core: Core,
    stream: Duplex,
    readonly info: ConnectionInfo,
  ) {
    super(core, stream);
    this.decoder = new PacketDecoder({ maxPacketSize: core.options.maxPacketSize });
    // Shared listener functions (no closures per connection): the stream points back at us.
    (stream as LinkedStream)[CONNECTION] = this;
    stream.on('data', onStreamData);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    this.deadline = this.lastActivity + core.options.connectTimeout * 1000;
  }

  /** Where the connection is in its life. */
  get state(): ConnectionState {
    return this.current;
  }

  // ---- what the handlers change ----

  /** A CONNECT arrived: the protocol level and the client's limits apply from now on, the CONNACK included [MQTT-3.1.2-24]. */
  connecting(packet: ConnectPacket, clientId: string): void {
    this.version = packet.protocolVersion;
    this.username = packet.username;
    this.clientId = clientId;
    if (packet.protocolVersion === 5) this.maxPacketSize = packet.properties?.maximumPacketSize ?? Infinity;
  }

  /** An asynchronous decision (authentication, a cluster claim) runs before CONNACK: later packets wait. */
  authenticating(): void {
    this.current = 'authenticating';
  }

  /** CONNECT accepted: the connection serves `session` from now on. */
  accepted(accepted: Accepted): void {
    this.current = 'connected';
    this.session = accepted.session;
    this.identity = accepted.identity;
    this.username = accepted.identity.username;
    this.authMethod = accepted.authMethod;
    this.topicAliasMaximum = accepted.topicAliasMaximum;
    this.keepalive = accepted.keepalive;
    // [MQTT-3.1.2-24] keep-alive is enforced at one and a half times the interval.
    this.keepaliveMs = accepted.keepalive * 1500;
    this.deadline = accepted.keepalive > 0 ? this.lastActivity + this.keepaliveMs : Infinity;
  }

  /** The topic of an inbound PUBLISH carrying an MQTT 5 Topic Alias. */
  resolveTopicAlias(topic: string, alias: number): string {
    this.aliasesIn ??= new InboundTopicAliases(this.core.options.topicAliasMaximum);
    return this.aliasesIn.resolve(topic, alias);
  }

  /**
   * Publish rate limit: past `maxPublishRate` messages or `maxPublishBytesRate` bytes in a second,
   * reading pauses (and packets already read are held) until the second is over. Nothing is dropped.
   */
  throttlePublish(bytes: number): void {
    const options = this.core.options;
    const limiter = (this.limiter ??= new PublishRateLimiter(options.maxPublishRate, options.maxPublishBytesRate));
    const wait = limiter.count(bytes, Date.now());
    if (wait === 0 || this.throttled) return;
    this.throttled = true;
    this.core.stats.rateLimited++;
    if (!limiter.reported) {
      // Once per connection, so a steady over-publisher does not flood the log.
      limiter.reported = true;
      this.core.logger.info(
        { clientId: this.clientId, maxPublishRate: options.maxPublishRate, maxPublishBytesRate: options.maxPublishBytesRate },
        'publish rate limit reached: client slowed down (further occurrences counted in starling_rate_limited_total)',
      );
    }
    this.stream.pause();
    this.holdPackets();
    setTimeout(() => {
      this.throttled = false;
      if (this.isClosed()) return;
      this.releaseHold();
      if (!this.readingPaused && !this.throttled) this.stream.resume();
    }, wait).unref();
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
      if (this.isClosed() || !this.handle(backlog[i] as Packet)) return;
      if (this.holds > 0) {
        // A packet started another hold: the rest waits again, in order, before anything newer.
        this.backlog = backlog.slice(i + 1).concat(this.backlog ?? []);
        return;
      }
    }
  }

  // ---- bytes in ----

  /** Processes one chunk of bytes from the stream. */
  onData(chunk: Buffer): void {
    if (this.current === 'closed') return;
    this.core.stats.bytesReceived += chunk.length;
    // Decoded packets go to one array shared by every connection (none per read); a read that runs
    // while another is being handled (an in-process client answering synchronously) gets its own.
    const shared = !scratchInUse;
    const packets = shared ? scratch : [];
    scratchInUse = true;
    try {
      try {
        this.decoder.push(chunk, packets);
      } catch (error) {
        this.fail(error);
        return;
      }
      // Keep-alive counts complete control packets, not bytes [MQTT-3.1.2-24].
      if (packets.length > 0) this.lastActivity = Date.now();
      for (let i = 0; i < packets.length; i++) {
        if (this.isClosed()) return;
        const packet = packets[i] as Packet;
        if (this.holds > 0) (this.backlog ??= []).push(packet);
        else if (!this.handle(packet)) return;
      }
    } finally {
      if (shared) {
        scratch.length = 0;
        scratchInUse = false;
      }
    }
  }

  /** Runs the handler of one packet; false when it failed (the connection is closed). */
  private handle(packet: Packet): boolean {
    try {
      handlePacket(this.core, this, packet);
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  /** Called by the broker's periodic sweep: enforces the connect timeout and keep-alive. */
  checkTimers(now: number): void {
    if (now < this.deadline) return;
    if (this.current === 'awaiting-connect' || this.current === 'authenticating') {
      this.core.logger.info({ remote: this.info.remoteAddress }, 'closing connection: no CONNECT within the connect timeout');
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
      this.core.logger.info({ clientId: this.clientId, keepalive: this.keepalive }, 'closing connection: keep-alive timeout [MQTT-3.1.2-24]');
      this.close('keep-alive-timeout');
      return;
    }
    this.deadline = due;
  }

  /** Socket error: logged at debug level (clients vanish all the time), then closed. */
  onError(error: Error): void {
    this.core.logger.debug({ clientId: this.clientId, remote: this.info.remoteAddress, err: error.message }, 'socket error');
    this.close('socket-error');
  }

  /** Closes the connection for a protocol error, naming the client and the rule in the log. */
  fail(error: unknown): void {
    if (this.current === 'closed') return;
    const { stats, logger } = this.core;
    stats.protocolErrors++;
    const remote = this.info.remoteAddress;
    if (error instanceof UnsupportedProtocolVersionError && this.current === 'awaiting-connect') {
      stats.connectionsRefused++;
      logger.info({ remote, requestedVersion: error.requestedVersion }, `connection refused: ${error.message}`);
      // [MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 before the close;
      // an unknown protocol name is closed without CONNACK [MQTT-3.1.2-1].
      if (error.nameRecognised) this.send({ type: 'connack', sessionPresent: false, reasonCode: ConnectRefusal.protocolVersion.v3 });
      this.close('connect-refused');
      return;
    }
    const clientId = this.clientId || undefined;
    if (!(error instanceof MqttError)) {
      logger.error({ clientId, remote, err: error }, 'closing connection: internal error');
      this.close('protocol-error', ReasonCode.unspecifiedError);
      return;
    }
    logger.warn({ clientId, remote, code: error.code, reasonCode: error.reasonCode }, `closing connection: ${error.message}`);
    // MQTT 5 clients are told the rule in a Reason String (a diagnostic, always allowed on DISCONNECT).
    this.close('protocol-error', error.reasonCode, error.message);
  }

  /** Ends the connection; the session and the will are the lifecycle's business. */
  override close(reason: CloseReason, reasonCode?: number, reasonString?: string): void {
    if (this.current === 'closed') return;
    const wasConnected = this.current === 'connected';
    if (wasConnected && this.version === 5) {
      // MQTT 5: the server says why it closes; only after a successful CONNACK [MQTT-3.14.0-1].
      const code = reasonCode ?? CLOSE_REASON_CODES[reason];
      if (code !== undefined) {
        this.send(reasonString === undefined ? { type: 'disconnect', reasonCode: code } : { type: 'disconnect', reasonCode: code, properties: { reasonString } });
      }
    }
    this.current = 'closed';
    this.backlog = undefined;
    this.discardPending();
    this.stream.end();
    // Give the peer a moment to read a final CONNACK, then make sure the socket is gone.
    const stream = this.stream;
    if (!stream.destroyed) setTimeout(() => stream.destroy(), 1000).unref();
    const { clients, lifecycle, logger } = this.core;
    clients.closed(this, wasConnected);
    if (!wasConnected) return;
    logger.info({ clientId: this.clientId, remote: this.info.remoteAddress, username: this.username, protocol: this.version, reason }, 'client disconnected');
    const session = this.session;
    if (session !== undefined && session.link === this) lifecycle.disconnected(session, this.identity, reason);
  }
}

/** The packets of the read being handled (see onData). */
const scratch: Packet[] = [];
let scratchInUse = false;

function connectionOf(stream: Duplex): Connection {
  return (stream as LinkedStream)[CONNECTION] as Connection;
}

function onStreamData(this: Duplex, chunk: Buffer): void {
  connectionOf(this).onData(chunk);
}

function onStreamError(this: Duplex, error: Error): void {
  connectionOf(this).onError(error);
}

function onStreamClose(this: Duplex): void {
  connectionOf(this).close('socket-closed');
}
