/** PINGREQ and PINGRESP (spec 3.12, 3.13): constant two-byte packets. */
import { MalformedPacketError } from '../errors.js';
import type { PingreqPacket, PingrespPacket } from '../types.js';

/** The encoded PINGREQ, shared: never mutate it. */
export const PINGREQ_BYTES: Buffer = Buffer.from([0xc0, 0x00]);
/** The encoded PINGRESP, shared: never mutate it. */
export const PINGRESP_BYTES: Buffer = Buffer.from([0xd0, 0x00]);

function checkEmpty(name: string, flags: number, start: number, end: number): void {
  if (flags !== 0) throw new MalformedPacketError(`${name} fixed header flags must be 0 [MQTT-2.2.2-1]`);
  if (end !== start) throw new MalformedPacketError(`${name} must have remaining length 0`);
}

/** Decodes a PINGREQ (no body). */
export function decodePingreq(flags: number, _buf: Buffer, start: number, end: number): PingreqPacket {
  checkEmpty('PINGREQ', flags, start, end);
  return { type: 'pingreq' };
}

/** Decodes a PINGRESP (no body). */
export function decodePingresp(flags: number, _buf: Buffer, start: number, end: number): PingrespPacket {
  checkEmpty('PINGRESP', flags, start, end);
  return { type: 'pingresp' };
}
