/**
 * Incremental framing and decoding. A packet that lies whole inside the pushed chunk is decoded in place
 * (a PUBLISH payload is a view of the chunk); only a partial tail is copied, into a buffer of exactly
 * that packet's size.
 */
import { MalformedPacketError, PacketTooLargeError } from './errors.js';
import { decodePuback, decodePubcomp, decodePubrec, decodePubrel } from './packets/ack.js';
import { decodeAuth } from './packets/auth.js';
import { decodeConnack } from './packets/connack.js';
import { decodeConnect } from './packets/connect.js';
import { decodeDisconnect } from './packets/disconnect.js';
import { decodePingreq, decodePingresp } from './packets/ping.js';
import { decodePublish } from './packets/publish.js';
import { decodeSuback } from './packets/suback.js';
import { decodeSubscribe } from './packets/subscribe.js';
import { decodeUnsuback } from './packets/unsuback.js';
import { decodeUnsubscribe } from './packets/unsubscribe.js';
import { MAX_VARINT } from './primitives.js';
import type { Packet, ProtocolVersion } from './types.js';

/** Largest packet the protocol can express: 1 type byte, 4 length bytes, MAX_VARINT body bytes. */
export const MAX_PACKET_SIZE = MAX_VARINT + 5;

/** Decodes one packet body [start, end) given its first fixed-header byte. */
function decodeBody(first: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): Packet {
  const flags = first & 0x0f;
  switch (first >> 4) {
    case 3: return decodePublish(flags, buf, start, end, version);
    case 4: return decodePuback(flags, buf, start, end, version);
    case 5: return decodePubrec(flags, buf, start, end, version);
    case 6: return decodePubrel(flags, buf, start, end, version);
    case 7: return decodePubcomp(flags, buf, start, end, version);
    case 1: return decodeConnect(flags, buf, start, end);
    case 2: return decodeConnack(flags, buf, start, end, version);
    case 8: return decodeSubscribe(flags, buf, start, end, version);
    case 9: return decodeSuback(flags, buf, start, end, version);
    case 10: return decodeUnsubscribe(flags, buf, start, end, version);
    case 11: return decodeUnsuback(flags, buf, start, end, version);
    case 12: return decodePingreq(flags, buf, start, end);
    case 13: return decodePingresp(flags, buf, start, end);
    case 14: return decodeDisconnect(flags, buf, start, end, version);
    case 15: return decodeAuth(flags, buf, start, end, version);
    default: throw new MalformedPacketError('packet type 0 is reserved');
  }
}

function tooLongLength(): MalformedPacketError {
  return new MalformedPacketError('Remaining Length longer than 4 bytes');
}

/** Options of a PacketDecoder. */
export interface PacketDecoderOptions {
  /** Protocol version of packets other than CONNECT until a CONNECT sets it (default 4). */
  version?: ProtocolVersion;
  /** Largest packet accepted, fixed header included (default: the protocol maximum). */
  maxPacketSize?: number;
}

/**
 * Turns a byte stream into packets. Throws MqttError subclasses; after a throw the stream is out of
 * sync and the decoder must be discarded.
 */
export class PacketDecoder {
  /** Version used for every packet but CONNECT; set from each decoded CONNECT (server side). */
  version: ProtocolVersion;
  /** Largest packet accepted, fixed header included. */
  readonly maxPacketSize: number;
  /** Partial fixed header (at most 5 bytes) carried over from the previous chunk. */
  private readonly head = Buffer.alloc(5);
  private headLen = 0;
  /** Partial packet (exactly its total size) carried over, with how much is filled. */
  private partial: Buffer | undefined;
  private partialLen = 0;
  private partialBodyStart = 0;

  constructor(options: PacketDecoderOptions = {}) {
    this.version = options.version ?? 4;
    this.maxPacketSize = options.maxPacketSize ?? MAX_PACKET_SIZE;
  }

  /**
   * Decodes every packet completed by `chunk`, appending to `out` (a new array by default). Packets
   * decoded before an error are already in `out` when push throws. `chunk` must not be reused by the
   * caller afterwards: payloads may be views of it.
   */
  push(chunk: Buffer, out: Packet[] = []): Packet[] {
    let pos = 0;
    if (this.headLen > 0) pos = this.continueHeader(chunk, out);
    if (this.partial !== undefined) pos = this.continuePartial(chunk, pos, out);
    const len = chunk.length;
    while (pos < len) {
      const first = chunk[pos]!;
      let p = pos + 1;
      let remaining = 0;
      let mul = 1;
      let complete = false;
      while (p < len) {
        const b = chunk[p++]!;
        remaining += (b & 0x7f) * mul;
        if (b < 0x80) {
          complete = true;
          break;
        }
        if (p - pos === 5) throw tooLongLength();
        mul *= 0x80;
      }
      if (!complete) {
        chunk.copy(this.head, 0, pos, len);
        this.headLen = len - pos;
        return out;
      }
      const total = p - pos + remaining;
      if (total > this.maxPacketSize) throw new PacketTooLargeError(total, this.maxPacketSize);
      const end = p + remaining;
      if (end > len) {
        this.startPartial(chunk, pos, len, total, p - pos);
        return out;
      }
      out.push(this.decode(first, chunk, p, end));
      pos = end;
    }
    return out;
  }

  private decode(first: number, buf: Buffer, start: number, end: number): Packet {
    const packet = decodeBody(first, buf, start, end, this.version);
    if (packet.type === 'connect') this.version = packet.protocolVersion;
    return packet;
  }

  /** Copies the packet tail [pos, len) of `chunk` into a buffer of the packet's `total` size. */
  private startPartial(chunk: Buffer, pos: number, len: number, total: number, headerLen: number): void {
    this.partial = Buffer.allocUnsafe(total);
    chunk.copy(this.partial, 0, pos, len);
    this.partialLen = len - pos;
    this.partialBodyStart = headerLen;
  }

  /** Completes a fixed header split across chunks; returns how much of `chunk` it used. */
  private continueHeader(chunk: Buffer, out: Packet[]): number {
    const head = this.head;
    let pos = 0;
    while (pos < chunk.length) {
      const b = chunk[pos++]!;
      head[this.headLen++] = b;
      if (b < 0x80) {
        const headerLen = this.headLen;
        this.headLen = 0;
        let remaining = 0;
        for (let i = headerLen - 1; i >= 1; i--) remaining = remaining * 0x80 + (head[i]! & 0x7f);
        const total = headerLen + remaining;
        if (total > this.maxPacketSize) throw new PacketTooLargeError(total, this.maxPacketSize);
        if (remaining === 0) {
          out.push(this.decode(head[0]!, head, headerLen, headerLen));
          return pos;
        }
        this.startPartial(head, 0, headerLen, total, headerLen);
        return pos;
      }
      if (this.headLen === 5) throw tooLongLength();
    }
    return pos;
  }

  /** Feeds `chunk` from `pos` into the partial packet; decodes it when complete. */
  private continuePartial(chunk: Buffer, pos: number, out: Packet[]): number {
    const partial = this.partial!;
    const n = Math.min(partial.length - this.partialLen, chunk.length - pos);
    chunk.copy(partial, this.partialLen, pos, pos + n);
    this.partialLen += n;
    if (this.partialLen === partial.length) {
      this.partial = undefined;
      out.push(this.decode(partial[0]!, partial, this.partialBodyStart, partial.length));
    }
    return pos + n;
  }
}

/** Decodes exactly one complete packet; missing or extra bytes are malformed. */
export function decodePacket(buf: Buffer, version: ProtocolVersion): Packet {
  if (buf.length < 2) throw new MalformedPacketError('packet shorter than a fixed header');
  let p = 1;
  let remaining = 0;
  let mul = 1;
  for (;;) {
    if (p >= buf.length) throw new MalformedPacketError('truncated Remaining Length');
    const b = buf[p++]!;
    remaining += (b & 0x7f) * mul;
    if (b < 0x80) break;
    if (p === 5) throw tooLongLength();
    mul *= 0x80;
  }
  if (p + remaining !== buf.length) {
    throw new MalformedPacketError(`Remaining Length ${remaining} does not match ${buf.length - p} body bytes`);
  }
  return decodeBody(buf[0]!, buf, p, buf.length, version);
}
