/**
 * MQTT data representations (spec 1.5): Variable Byte Integer, Two / Four Byte Integer, UTF-8 Encoded
 * String, Binary Data. A bounds-checked `Reader` for decoding and an exact-size `Writer` for encoding.
 */
import { isUtf8 } from 'node:buffer';
import { MalformedPacketError } from './errors.js';

/** Largest value a Variable Byte Integer can hold (four bytes, spec 1.5.5). */
export const MAX_VARINT = 268_435_455;

/** Largest length a UTF-8 Encoded String or Binary Data can have (two-byte length prefix). */
export const MAX_U16 = 0xffff;

/** Number of bytes the Variable Byte Integer encoding of `n` takes (1 to 4). */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x20_0000 ? 3 : 4;
}

/** Writes `n` as a Variable Byte Integer at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (n > 0);
  return pos;
}

/**
 * Throws unless bytes [start, end) are well-formed UTF-8 without U+0000. Surrogate code points and
 * overlong forms are not well-formed UTF-8 [MQTT-1.5.3-1]; U+0000 is forbidden [MQTT-1.5.3-2]
 * (MQTT 5: [MQTT-1.5.4-1], [MQTT-1.5.4-2]).
 */
export function checkUtf8(buf: Buffer, start: number, end: number): void {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === 0) throw new MalformedPacketError('UTF-8 string contains U+0000 [MQTT-1.5.3-2]');
    if (b >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return;
  const view = buf.subarray(start, end);
  // A NUL byte in well-formed UTF-8 can only be U+0000 itself (overlong forms are ill-formed).
  if (!isUtf8(view)) throw new MalformedPacketError('ill-formed UTF-8 string [MQTT-1.5.3-1]');
  if (view.includes(0)) throw new MalformedPacketError('UTF-8 string contains U+0000 [MQTT-1.5.3-2]');
}

/** Bounds-checked cursor over bytes [pos, end) of a buffer; every short read is a MalformedPacketError. */
export class Reader {
  /** Underlying buffer (the read chunk or an accumulation buffer). */
  readonly buf: Buffer;
  /** Next byte to read. */
  pos: number;
  /** One past the last byte this reader may read. */
  readonly end: number;

  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Bytes not yet read. */
  remaining(): number {
    return this.end - this.pos;
  }

  /** Throws unless every byte has been read (bytes left over inside a packet are malformed). */
  expectEnd(what: string): void {
    if (this.pos !== this.end) throw new MalformedPacketError(`${this.end - this.pos} unexpected byte(s) after ${what}`);
  }

  /** Reads one byte. */
  u8(): number {
    if (this.pos >= this.end) throw short();
    return this.buf[this.pos++]!;
  }

  /** Reads a Two Byte Integer (big-endian). */
  u16(): number {
    const p = this.pos;
    if (p + 2 > this.end) throw short();
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  /** Reads a Packet Identifier, which must be non-zero [MQTT-2.3.1-1]. */
  packetId(): number {
    const id = this.u16();
    if (id === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.3.1-1]');
    return id;
  }

  /** Reads a Four Byte Integer (big-endian, unsigned). */
  u32(): number {
    const p = this.pos;
    if (p + 4 > this.end) throw short();
    this.pos = p + 4;
    return this.buf.readUInt32BE(p);
  }

  /** Reads a Variable Byte Integer of at most four bytes (non-minimal encodings are accepted). */
  varint(): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * mul;
      if (b < 0x80) return value;
      mul *= 0x80;
    }
    throw new MalformedPacketError('Variable Byte Integer longer than 4 bytes');
  }

  /** Reads a UTF-8 Encoded String, validated. */
  utf8(): string {
    const len = this.u16();
    const s = this.pos;
    const e = s + len;
    if (e > this.end) throw short();
    checkUtf8(this.buf, s, e);
    this.pos = e;
    return this.buf.toString('utf8', s, e);
  }

  /** Reads Binary Data as a copy, so it can outlive the read chunk. */
  binary(): Buffer {
    const len = this.u16();
    const s = this.pos;
    if (s + len > this.end) throw short();
    this.pos = s + len;
    return Buffer.from(this.buf.subarray(s, s + len));
  }
}

function short(): MalformedPacketError {
  return new MalformedPacketError('packet shorter than its content');
}

/** Byte length of `s` as a UTF-8 Encoded String body; throws when it cannot fit a two-byte length. */
export function utf8Length(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > MAX_U16) throw new MalformedPacketError(`string of ${n} bytes exceeds 65535`);
  return n;
}

/** Cursor writing into a buffer allocated with the exact size of the packet. */
export class Writer {
  /** Destination buffer. */
  readonly buf: Buffer;
  /** Next byte to write. */
  pos: number;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  /** Writes one byte. */
  u8(n: number): void {
    this.buf[this.pos++] = n;
  }

  /** Writes a Two Byte Integer. */
  u16(n: number): void {
    const p = this.pos;
    this.buf[p] = n >>> 8;
    this.buf[p + 1] = n & 0xff;
    this.pos = p + 2;
  }

  /** Writes a Four Byte Integer. */
  u32(n: number): void {
    this.buf.writeUInt32BE(n, this.pos);
    this.pos += 4;
  }

  /** Writes a Variable Byte Integer. */
  varint(n: number): void {
    this.pos = writeVarint(this.buf, this.pos, n);
  }

  /** Writes a UTF-8 Encoded String whose byte length `len` the caller already measured. */
  utf8(s: string, len: number): void {
    this.u16(len);
    if (len > 0) this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** Writes Binary Data (two-byte length, then the bytes). */
  binary(b: Buffer): void {
    if (b.length > MAX_U16) throw new MalformedPacketError(`binary data of ${b.length} bytes exceeds 65535`);
    this.u16(b.length);
    this.bytes(b);
  }

  /** Writes raw bytes with no length prefix. */
  bytes(b: Buffer): void {
    if (b.length > 0) b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /** Writes a fixed header: first byte and Remaining Length. */
  header(first: number, remaining: number): void {
    this.buf[this.pos++] = first;
    this.varint(remaining);
  }

  /** Returns the buffer, asserting that the size computation matched what was written. */
  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`encoder wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

/** Total packet size for a body of `remaining` bytes (fixed header included). */
export function packetSize(remaining: number): number {
  if (remaining > MAX_VARINT) throw new MalformedPacketError(`remaining length ${remaining} exceeds ${MAX_VARINT}`);
  return 1 + varintSize(remaining) + remaining;
}
