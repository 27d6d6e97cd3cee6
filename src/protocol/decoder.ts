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

/** Largest partial packet buffered in one exact-size allocation; larger ones are gathered in pieces. */
const EXACT_ALLOC_LIMIT = 64 * 1024;

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
  /** Partial fixed header (at most 5 bytes) carried over from the previous chunk; allocated when first needed. */
  private head: Buffer | undefined;
  private headLen = 0;
  /** Partial packet carried over: an exact-size buffer for small packets, or received pieces for large ones. */
  private partial: Buffer | undefined;
  private parts: Buffer[] | undefined;
  private partialLen = 0;
  private partialTotal = 0;
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
    if (this.partialTotal > 0) pos = this.continuePartial(chunk, pos, out);
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
        this.head ??= Buffer.alloc(5);
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

  /**
   * Keeps the packet start [pos, len) of `src`. A small packet gets a buffer of its exact size; a large
   * one keeps the pieces received so far, so a header claiming 256 MB does not allocate 256 MB.
   */
  private startPartial(src: Buffer, pos: number, len: number, total: number, headerLen: number): void {
    this.partialTotal = total;
    this.partialLen = len - pos;
    this.partialBodyStart = headerLen;
    if (total <= EXACT_ALLOC_LIMIT) {
      this.partial = Buffer.allocUnsafe(total);
      src.copy(this.partial, 0, pos, len);
    } else {
      this.parts = [Buffer.from(src.subarray(pos, len))]; // copied: `src` may be the reused header buffer
    }
  }

  /** Completes a fixed header split across chunks; returns how much of `chunk` it used. */
  private continueHeader(chunk: Buffer, out: Packet[]): number {
    const head = this.head!;
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
    const total = this.partialTotal;
    const n = Math.min(total - this.partialLen, chunk.length - pos);
    if (this.partial !== undefined) chunk.copy(this.partial, this.partialLen, pos, pos + n);
    else this.parts?.push(chunk.subarray(pos, pos + n));
    this.partialLen += n;
    if (this.partialLen === total) {
      const buf = this.partial ?? Buffer.concat(this.parts ?? [], total);
      this.partial = undefined;
      this.parts = undefined;
      this.partialTotal = 0;
      out.push(this.decode(buf[0]!, buf, this.partialBodyStart, total));
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
