/**
 * The sending side of a client: QoS 1/2 flows sent within the server's Receive Maximum and resent
 * (DUP) on a new connection, their acknowledgements, and QoS 0 messages held while offline.
 */
import type { Properties, ProtocolVersion, PublishPacket } from '../protocol/index.js';
import type { Connection } from './connection.js';
import { RequestRejectedError } from './errors.js';
import type { OutgoingFlow, PublishResult, Session, Settle } from './session.js';

/** Outgoing messages of one client. */
export class Outbox {
  /** Flows waiting for send quota or a connection, in publish order. */
  private readonly waiting: OutgoingFlow[] = [];
  private offlineQos0: Array<{ packet: PublishPacket; settle: Settle<PublishResult> }> = [];
  private receiveMaximum = 65_535;

  constructor(private readonly session: Session) {}

  /** A new connection (`receiveMaximum` from its CONNACK): every unfinished flow is sent again, then the QoS 0 messages held. */
  connected(conn: Connection, receiveMaximum: number): void {
    this.receiveMaximum = receiveMaximum;
    this.session.sentCount = 0;
    this.waiting.length = 0;
    for (const flow of this.session.outgoing.values()) {
      flow.sent = false;
      this.waiting.push(flow);
    }
    this.pump(conn);
    const offline = this.offlineQos0;
    this.offlineQos0 = [];
    for (const { packet, settle } of offline) {
      conn.send(packet);
      settle.resolve({ reasonCode: 0 });
    }
  }

  /** The connection is gone: nothing counts as sent on it any more. */
  disconnected(): void {
    for (const flow of this.session.outgoing.values()) flow.sent = false;
    this.session.sentCount = 0;
  }

  /** A QoS 0 message while offline: sent (and resolved) once connected. */
  holdQos0(packet: PublishPacket): Promise<PublishResult> {
    return new Promise((resolve, reject) => this.offlineQos0.push({ packet, settle: { resolve, reject } }));
  }

  /** A new QoS 1/2 message with its packet id: sent on `conn` now if the quota allows, else later. */
  add(packet: PublishPacket, conn: Connection | undefined): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      const flow: OutgoingFlow = { packet, stage: 'ack', sent: false, settle: { resolve, reject } };
      this.session.outgoing.set(packet.packetId!, flow);
      this.waiting.push(flow);
      this.pump(conn);
    });
  }

  /** Sends waiting flows on `conn` (undefined: not connected) while the server's Receive Maximum allows. */
  pump(conn: Connection | undefined): void {
    if (conn === undefined) return;
    while (this.waiting.length > 0 && this.session.sentCount < this.receiveMaximum) {
      const flow = this.waiting.shift()!;
      if (this.session.outgoing.get(flow.packet.packetId!) !== flow) continue;
      flow.sent = true;
      this.session.sentCount++;
      if (flow.stage === 'pubcomp') {
        conn.send({ type: 'pubrel', packetId: flow.packet.packetId! });
      } else {
        conn.send(flow.packet);
        flow.packet.dup = true; // any later send of this flow is a resend [MQTT-3.3.1-1]
      }
    }
  }

  /** PUBACK, PUBREC or PUBCOMP for packet `id`: the flow moves on or completes (rejected on a failure code); then `pump`. */
  acked(conn: Connection, version: ProtocolVersion, type: 'puback' | 'pubrec' | 'pubcomp', id: number, code: number, properties: Properties | undefined): void {
    const flow = this.session.outgoing.get(id);
    const expected = flow === undefined ? undefined : flow.stage === 'pubcomp' ? 'pubcomp' : flow.packet.qos === 1 ? 'puback' : 'pubrec';
    if (flow === undefined || expected !== type) {
      if (type === 'pubrec') conn.send({ type: 'pubrel', packetId: id, reasonCode: version === 5 ? 0x92 : 0 });
      return;
    }
    if (type === 'pubrec' && code < 0x80) {
      flow.stage = 'pubcomp';
      conn.send({ type: 'pubrel', packetId: id });
      return;
    }
    this.session.outgoing.delete(id);
    if (flow.sent) this.session.sentCount--;
    const result: PublishResult = { reasonCode: code };
    if (properties !== undefined) result.properties = properties;
    if (code >= 0x80) flow.settle.reject(new RequestRejectedError(`PUBLISH to "${flow.packet.topic}"`, code, properties));
    else flow.settle.resolve(result);
  }

  /** The client closed: held QoS 0 messages fail with `error` (the session fails the flows). */
  fail(error: Error): void {
    for (const { settle } of this.offlineQos0) settle.reject(error);
    this.offlineQos0 = [];
  }
}
