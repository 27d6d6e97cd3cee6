/**
 * Hostile-input fuzzing harness (issue 5, item 7): a seeded PRNG, generators of valid packets of every
 * type for MQTT 3.1, 3.1.1 and 5 (with random MQTT 5 property sets drawn from PROPERTY_TABLE), raw
 * property blocks that break the property rules on purpose, and byte-level mutators (truncation,
 * length-field corruption, bit flips, byte insert / delete, reserved-flag flips, invalid UTF-8 and
 * U+0000 injection, Remaining Length claims up to 256 MB).
 *
 * Pure: no sockets, no broker. Used by test/unit/protocol/decoder.fuzz.test.ts,
 * test/integration/14-hostile.test.ts and bench/fuzz-long.ts. The same seed always gives the same inputs.
 */
import {
  PROPERTY_TABLE,
  PropertyContext,
  encodePacket,
  type Packet,
  type PacketTypeName,
  type Properties,
  type PropertyDefinition,
  type ProtocolVersion,
  type QoS,
  type SubscriptionRequest,
  type UserProperty,
} from '../../src/protocol/index.js';

// ---------------------------------------------------------------------------------------------
// PRNG

/** A seeded pseudo-random source (mulberry32): small, fast, reproducible. */
export interface Rng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** Integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
  /** A new generator seeded from this one (for independent streams). */
  fork(): Rng;
}

/** A mulberry32 generator for `seed`. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const rng: Rng = {
    seed: seed >>> 0,
    next,
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
    fork: () => createRng(int(0x1_0000_0000)),
  };
  return rng;
}

// ---------------------------------------------------------------------------------------------
// Wire helpers

/** Largest Remaining Length the protocol can express (268,435,455: "256 MB"). */
export const MAX_REMAINING_LENGTH = 268_435_455;

/** Variable Byte Integer (spec 1.5.5 / 2.2.3). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A packet with first byte `first` and a correct Remaining Length for `body`. */
export function frame(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), varint(body.length), body]);
}

/** A UTF-8 string field (2-byte length prefix) from a string or raw bytes (which need not be valid UTF-8). */
export function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

export function u16(n: number): Buffer {
  return Buffer.from([(n >> 8) & 0xff, n & 0xff]);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Offsets of the packets in a well-framed stream (stops at the first incomplete packet). */
export function packetOffsets(stream: Buffer): number[] {
  const offsets: number[] = [];
  let pos = 0;
  while (pos + 1 < stream.length) {
    let p = pos + 1;
    let remaining = 0;
    let mul = 1;
    let ok = false;
    while (p < stream.length && p - pos <= 4) {
      const b = stream[p++]!;
      remaining += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) {
        ok = true;
        break;
      }
    }
    if (!ok) break;
    offsets.push(pos);
    pos = p + remaining;
  }
  return offsets;
}

// ---------------------------------------------------------------------------------------------
// Valid values

/** Text pieces: ASCII, 2-byte (é = C3 A9), 3-byte (€ = E2 82 AC) and 4-byte (😀) UTF-8, so the
 * UTF-8 mutators always find something to break. Never U+0000, never a wildcard or '/'. */
const TEXT_PIECES = ['a', 'b', 'z', 'x1', 'dev', 'é', '€', '😀', '漢', '-', '_', ' ', '~'] as const;

export function randomText(rng: Rng, maxPieces = 6): string {
  let s = '';
  const n = rng.int(maxPieces + 1);
  for (let i = 0; i < n; i++) s += rng.pick(TEXT_PIECES);
  return s;
}

/** A valid topic name: 1..5 levels, no wildcards, never empty. */
export function randomTopic(rng: Rng, prefix = 'fz'): string {
  const levels = [prefix];
  const n = rng.int(5);
  for (let i = 0; i < n; i++) levels.push(randomText(rng, 3));
  return levels.join('/');
}

/** A valid topic filter (with + and # sometimes; MQTT 5 also $share/...). */
export function randomFilter(rng: Rng, version: ProtocolVersion, prefix = 'fz'): string {
  const levels = [prefix];
  const n = rng.int(4);
  for (let i = 0; i < n; i++) levels.push(rng.chance(0.2) ? '+' : randomText(rng, 3));
  if (rng.chance(0.2)) levels.push('#');
  const filter = levels.join('/');
  return version === 5 && rng.chance(0.1) ? `$share/g${rng.int(4)}/${filter}` : filter;
}

function randomQos(rng: Rng): QoS {
  return rng.pick([0, 1, 2] as const);
}

function packetId(rng: Rng): number {
  return rng.chance(0.1) ? rng.pick([1, 0xffff]) : rng.range(1, 0xffff);
}

function randomU32(rng: Rng): number {
  return rng.chance(0.2) ? rng.pick([0, 1, 0xffff_ffff]) : rng.int(0x1_0000_0000);
}

// ---------------------------------------------------------------------------------------------
// Properties (MQTT 5)

/** Name of a property context (a packet type that carries properties, or `will`). */
export type ContextName = keyof typeof PropertyContext;

/** Definitions allowed in `context`. */
export function allowedProperties(context: ContextName): PropertyDefinition[] {
  return PROPERTY_TABLE.filter((d) => (d.contexts & PropertyContext[context]) !== 0);
}

function randomPropertyValue(rng: Rng, d: PropertyDefinition, context: ContextName): unknown {
  switch (d.type) {
    case 'byte':
      return rng.int(2); // every byte property of the table is a 0/1 flag
    case 'u16':
      return d.rule === 'nonzero' ? rng.range(1, 0xffff) : rng.int(0x10000);
    case 'u32':
      return d.rule === 'nonzero' ? Math.max(1, randomU32(rng)) : randomU32(rng);
    case 'varint': {
      // Subscription Identifier: 1..268,435,455; several only on PUBLISH.
      const n = context === 'publish' ? rng.range(1, 3) : 1;
      return Array.from({ length: n }, () => (rng.chance(0.3) ? rng.pick([1, 127, 128, 16_383, 16_384, MAX_REMAINING_LENGTH]) : rng.range(1, MAX_REMAINING_LENGTH)));
    }
    case 'utf8':
      return d.rule === 'topic' ? randomTopic(rng, 'resp') : randomText(rng);
    case 'binary':
      return rng.bytes(rng.int(24));
    case 'pair':
      return Array.from({ length: rng.range(1, 4) }, (): UserProperty => [rng.chance(0.3) ? 'k' : randomText(rng, 3), randomText(rng, 3)]);
  }
}

/**
 * A random, valid property set for `context`: each allowed property present with probability
 * `density`; undefined when none was drawn (the decoder's canonical form).
 */
export function randomProperties(rng: Rng, context: ContextName, density = 0.3): Properties | undefined {
  const props: Record<string, unknown> = {};
  for (const d of allowedProperties(context)) {
    if (rng.chance(density)) props[d.key] = randomPropertyValue(rng, d, context);
  }
  return Object.keys(props).length === 0 ? undefined : props;
}

/** What a raw property block breaks, if anything. */
export type PropertyFault = 'none' | 'not-allowed' | 'unknown-id' | 'duplicate' | 'zero-value' | 'bad-flag' | 'bad-length' | 'bad-utf8';

const UNKNOWN_IDS = PROPERTY_TABLE.reduce((ids, d) => ids.filter((id) => id !== d.id), Array.from({ length: 0x30 }, (_, i) => i));

function rawPropertyValue(rng: Rng, d: PropertyDefinition, context: ContextName): Buffer {
  const v = randomPropertyValue(rng, d, context);
  switch (d.type) {
    case 'byte': return Buffer.from([v as number]);
    case 'u16': return u16(v as number);
    case 'u32': return u32(v as number);
    case 'varint': return varint((v as number[])[0]!);
    case 'utf8': return str(v as string);
    case 'binary': return Buffer.concat([u16((v as Buffer).length), v as Buffer]);
    case 'pair': return Buffer.concat([str((v as UserProperty[])[0]![0]), str((v as UserProperty[])[0]![1])]);
  }
}

/** A raw properties section and the fault it really carries ('none' when the asked one does not apply to the context). */
export interface RawProperties {
  bytes: Buffer;
  fault: PropertyFault;
}

/**
 * A raw MQTT 5 properties section (Property Length + properties) for `context`, built byte by byte,
 * which breaks one property rule (or none, for `fault: 'none'`).
 */
export function rawPropertyBlock(rng: Rng, context: ContextName, fault: PropertyFault): RawProperties {
  let applied = fault === 'none' || fault === 'not-allowed' || fault === 'unknown-id';
  const allowed = allowedProperties(context);
  const parts: Buffer[] = [];
  const one = (d: PropertyDefinition): Buffer => Buffer.concat([varint(d.id), rawPropertyValue(rng, d, context)]);
  for (const d of allowed) if (rng.chance(0.25) && d.key !== 'subscriptionIdentifiers') parts.push(one(d));
  const insert = (b: Buffer): void => void parts.splice(rng.int(parts.length + 1), 0, b);
  switch (fault) {
    case 'none':
      break;
    case 'not-allowed': {
      const others = PROPERTY_TABLE.filter((d) => (d.contexts & PropertyContext[context]) === 0);
      if (others.length > 0) insert(one(rng.pick(others)));
      else insert(Buffer.concat([varint(rng.pick(UNKNOWN_IDS)), Buffer.from([0])]));
      break;
    }
    case 'unknown-id':
      insert(Buffer.concat([varint(rng.chance(0.8) ? rng.pick(UNKNOWN_IDS) : rng.range(0x80, 0x3fff)), rng.bytes(rng.int(4))]));
      break;
    case 'duplicate': {
      const once = allowed.filter((d) => (d.repeatable & PropertyContext[context]) === 0);
      if (once.length > 0) {
        const d = rng.pick(once);
        insert(one(d));
        insert(one(d));
        applied = true;
      }
      break;
    }
    case 'zero-value': {
      const nonzero = allowed.filter((d) => d.rule === 'nonzero');
      if (nonzero.length > 0) {
        const d = rng.pick(nonzero);
        const zero = d.type === 'u16' ? u16(0) : d.type === 'u32' ? u32(0) : Buffer.from([0]);
        insert(Buffer.concat([varint(d.id), zero]));
        applied = true;
      }
      break;
    }
    case 'bad-flag': {
      const flags = allowed.filter((d) => d.rule === 'bool');
      if (flags.length > 0) {
        insert(Buffer.from([rng.pick(flags).id, rng.range(2, 255)]));
        applied = true;
      }
      break;
    }
    case 'bad-length':
      break; // applied to the Property Length below
    case 'bad-utf8': {
      const strings = allowed.filter((d) => d.type === 'utf8' || d.type === 'pair');
      if (strings.length > 0) {
        insert(Buffer.concat([varint(rng.pick(strings).id), str(rng.pick(INVALID_UTF8)), ...(rng.chance(0.5) ? [str('v')] : [])]));
        applied = true;
      }
      break;
    }
  }
  const body = Buffer.concat(parts);
  let length = body.length;
  if (fault === 'bad-length') {
    length = rng.chance(0.5) ? length + rng.range(1, 40) : rng.pick([MAX_REMAINING_LENGTH, 0x3fff, Math.max(0, length - 1)]);
    applied = length !== body.length;
  }
  return { bytes: Buffer.concat([varint(length), body]), fault: applied ? fault : 'none' };
}

/** Every property fault, for round-robin use. */
export const PROPERTY_FAULTS: readonly PropertyFault[] = ['none', 'not-allowed', 'unknown-id', 'duplicate', 'zero-value', 'bad-flag', 'bad-length', 'bad-utf8'];

/** Client-to-server MQTT 5 packets with a raw properties section `props` (Packet Identifier 1..65535). */
export type RawV5Kind = 'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'puback' | 'disconnect';

/** The property context a raw packet of `kind` uses. */
export const RAW_V5_CONTEXT: Readonly<Record<RawV5Kind, ContextName>> = {
  connect: 'connect', publish: 'publish', subscribe: 'subscribe', unsubscribe: 'unsubscribe', puback: 'puback', disconnect: 'disconnect',
};

/** A hand-built MQTT 5 packet of `kind` whose properties section is exactly `props`. */
export function rawV5Packet(kind: RawV5Kind, props: Buffer, opts: { clientId?: string; topic?: string; packetId?: number } = {}): Buffer {
  const id = u16(opts.packetId ?? 1);
  switch (kind) {
    case 'connect':
      return frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([5, 0x02]), u16(0), props, str(opts.clientId ?? 'raw5')]));
    case 'publish':
      return frame(0x32, Buffer.concat([str(opts.topic ?? 'fz/raw'), id, props, Buffer.from('payload')]));
    case 'subscribe':
      return frame(0x82, Buffer.concat([id, props, str(opts.topic ?? 'fz/raw/#'), Buffer.from([1])]));
    case 'unsubscribe':
      return frame(0xa2, Buffer.concat([id, props, str(opts.topic ?? 'fz/raw/#')]));
    case 'puback':
      return frame(0x40, Buffer.concat([id, Buffer.from([0]), props]));
    case 'disconnect':
      return frame(0xe0, Buffer.concat([Buffer.from([0]), props]));
  }
}

// ---------------------------------------------------------------------------------------------
// Valid packets of every type

const CODES = {
  connack5: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  pubackPubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrelPubcomp: [0x00, 0x92],
  suback4: [0x00, 0x01, 0x02, 0x80],
  suback5: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback5: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect5: [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2],
  auth5: [0x00, 0x18, 0x19],
} as const;

/** Packet types of each version (AUTH is MQTT 5 only). */
export function packetTypes(version: ProtocolVersion): PacketTypeName[] {
  const all: PacketTypeName[] = ['connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect'];
  return version === 5 ? [...all, 'auth'] : all;
}

/** Packet types a client sends to a server. */
export const CLIENT_TYPES: readonly PacketTypeName[] = ['publish', 'publish', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'subscribe', 'unsubscribe', 'pingreq', 'disconnect'];

function withProps<T extends Packet>(rng: Rng, version: ProtocolVersion, packet: T, context: ContextName): T {
  if (version !== 5) return packet;
  const props = randomProperties(rng, context);
  return props === undefined ? packet : { ...packet, properties: props };
}

/** A valid CONNECT of `version`. */
export function randomConnect(rng: Rng, version: ProtocolVersion, clientId?: string): Packet {
  let p: Packet = {
    type: 'connect',
    protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clean: rng.chance(0.8),
    keepalive: rng.pick([0, 0, 1, 60, 0xffff]),
    clientId: clientId ?? (version === 3 ? `c${rng.int(1e9)}` : rng.chance(0.1) ? '' : `c${rng.int(1e9)}${randomText(rng, 2)}`),
  };
  if (p.clientId === '' && version === 4) p.clean = true; // [MQTT-3.1.3-7]
  if (rng.chance(0.3)) {
    const will = { topic: randomTopic(rng, 'will'), payload: rng.bytes(rng.int(16)), qos: randomQos(rng), retain: rng.chance(0.3) };
    const willProps = version === 5 ? randomProperties(rng, 'will') : undefined;
    p = { ...p, will: willProps === undefined ? will : { ...will, properties: willProps } };
  }
  if (rng.chance(0.3)) {
    p = { ...p, username: randomText(rng, 4) };
    if (rng.chance(0.7)) p = { ...p, password: rng.bytes(rng.int(12)) };
  } else if (version === 5 && rng.chance(0.1)) {
    p = { ...p, password: rng.bytes(rng.int(12)) }; // MQTT 5 allows a password without a user name
  }
  return withProps(rng, version, p, 'connect');
}

function subscription(rng: Rng, version: ProtocolVersion): SubscriptionRequest {
  const topicFilter = randomFilter(rng, version);
  const base: SubscriptionRequest = { topicFilter, qos: randomQos(rng) };
  if (version !== 5) return base;
  return { ...base, noLocal: !topicFilter.startsWith('$share/') && rng.chance(0.3), retainAsPublished: rng.chance(0.3), retainHandling: rng.pick([0, 1, 2] as const) };
}

/** A valid packet of `type` (random type when omitted) for `version`. */
export function randomPacket(rng: Rng, version: ProtocolVersion, type: PacketTypeName = rng.pick(packetTypes(version))): Packet {
  const v5 = version === 5;
  switch (type) {
    case 'connect':
      return randomConnect(rng, version);
    case 'connack':
      return withProps(rng, version, { type, sessionPresent: version !== 3 && rng.chance(0.5), reasonCode: rng.pick(v5 ? CODES.connack5 : [0, 1, 2, 3, 4, 5]) }, 'connack');
    case 'publish': {
      const qos = randomQos(rng);
      let p: Packet = { type, topic: randomTopic(rng), payload: rng.bytes(rng.chance(0.05) ? rng.int(2000) : rng.int(48)), qos, retain: rng.chance(0.2), dup: qos > 0 && rng.chance(0.2) };
      if (qos > 0) p = { ...p, packetId: packetId(rng) };
      p = withProps(rng, version, p, 'publish');
      // MQTT 5: with a Topic Alias the topic name may be empty.
      if (p.properties?.topicAlias !== undefined && rng.chance(0.5)) p = { ...p, topic: '' };
      return p;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      if (!v5) return { type, packetId: packetId(rng) };
      const codes = type === 'puback' || type === 'pubrec' ? CODES.pubackPubrec : CODES.pubrelPubcomp;
      return withProps(rng, version, { type, packetId: packetId(rng), reasonCode: rng.pick(codes) }, type);
    }
    case 'subscribe':
      return withProps(rng, version, { type, packetId: packetId(rng), subscriptions: Array.from({ length: rng.range(1, 4) }, () => subscription(rng, version)) }, 'subscribe');
    case 'suback':
      return withProps(rng, version, { type, packetId: packetId(rng), reasonCodes: Array.from({ length: rng.range(1, 4) }, () => rng.pick(v5 ? CODES.suback5 : CODES.suback4)) }, 'suback');
    case 'unsubscribe':
      return withProps(rng, version, { type, packetId: packetId(rng), topicFilters: Array.from({ length: rng.range(1, 4) }, () => randomFilter(rng, version)) }, 'unsubscribe');
    case 'unsuback':
      if (!v5) return { type, packetId: packetId(rng) };
      return withProps(rng, version, { type, packetId: packetId(rng), reasonCodes: Array.from({ length: rng.range(1, 4) }, () => rng.pick(CODES.unsuback5)) }, 'unsuback');
    case 'pingreq':
      return { type };
    case 'pingresp':
      return { type };
    case 'disconnect':
      return v5 ? withProps(rng, version, { type, reasonCode: rng.pick(CODES.disconnect5) }, 'disconnect') : { type };
    case 'auth':
      return withProps(rng, 5, { type, reasonCode: rng.pick(CODES.auth5) }, 'auth');
  }
}

/** A valid stream: packets and their encoding, with the offset of each packet. */
export interface ValidStream {
  version: ProtocolVersion;
  packets: Packet[];
  bytes: Buffer;
  offsets: number[];
}

/**
 * A valid client session as bytes: CONNECT of `version`, then 0..maxPackets client packets (or, with
 * `anyType`, packets of any type).
 */
export function randomStream(rng: Rng, version: ProtocolVersion, options: { maxPackets?: number; anyType?: boolean; clientId?: string } = {}): ValidStream {
  const packets: Packet[] = [randomConnect(rng, version, options.clientId)];
  const n = rng.int((options.maxPackets ?? 4) + 1);
  for (let i = 0; i < n; i++) packets.push(randomPacket(rng, version, options.anyType === true ? undefined : rng.pick(CLIENT_TYPES)));
  const parts = packets.map((p) => encodePacket(p, version));
  const offsets: number[] = [];
  let at = 0;
  for (const part of parts) {
    offsets.push(at);
    at += part.length;
  }
  return { version, packets, bytes: Buffer.concat(parts), offsets };
}

// ---------------------------------------------------------------------------------------------
// Mutators

/** Invalid UTF-8 (spec 1.5.4 [MQTT-1.5.4-1]): stray continuation, overlong, surrogate, beyond U+10FFFF, truncated, FF. */
export const INVALID_UTF8: readonly Buffer[] = [
  Buffer.from([0x80]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xe0, 0x80, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xed, 0xbf, 0xbf]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xff]),
];

/** What a mutator may use: the bytes and where each packet starts in them. */
export interface MutationInput {
  bytes: Buffer;
  offsets: readonly number[];
}

export type Mutator = (rng: Rng, input: MutationInput) => Buffer;

/** Header length (1 + Remaining Length bytes) of the packet at `at`, or 0 if it is not well framed. */
function headerLength(b: Buffer, at: number): number {
  for (let p = at + 1; p < b.length && p - at <= 4; p++) if (b[p]! < 0x80) return p - at + 1;
  return 0;
}

/** Replaces `length` bytes at `at` with `bytes`. */
function splice(b: Buffer, at: number, length: number, bytes: Buffer): Buffer {
  return Buffer.concat([b.subarray(0, at), bytes, b.subarray(at + length)]);
}

/** Same-length replacement of the bytes of multi-byte characters (keeps every length field true). */
function replaceCharacter(rng: Rng, b: Buffer, replacement: (len: number) => Buffer): Buffer | undefined {
  const spots: [number, number][] = [];
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    const len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    if (len > 0 && i + len <= b.length) {
      let ok = true;
      for (let k = 1; k < len; k++) if ((b[i + k]! & 0xc0) !== 0x80) ok = false;
      if (ok) spots.push([i, len]);
    }
  }
  if (spots.length === 0) return undefined;
  const [at, len] = rng.pick(spots);
  const out = Buffer.from(b);
  replacement(len).copy(out, at);
  return out;
}

/** Encodes a Remaining Length claim in exactly `width` bytes when possible (overlong forms are valid MQTT). */
function claim(n: number, width: number): Buffer {
  const natural = varint(n);
  if (natural.length >= width) return natural;
  const out = Buffer.alloc(width);
  natural.copy(out);
  for (let i = natural.length - 1; i < width - 1; i++) out[i] = out[i]! | 0x80;
  return out;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x10, 0x30, 0x82, 0xc0, 0xe0, 0xf0];

/** One byte set to an interesting or random value. */
function overwrite(rng: Rng, { bytes }: MutationInput): Buffer {
  if (bytes.length === 0) return bytes;
  const out = Buffer.from(bytes);
  out[rng.int(out.length)] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
  return out;
}

/** Every mutator, by name. */
export const MUTATORS = {
  /** Cut the stream anywhere. */
  truncate: (rng, { bytes }) => bytes.subarray(0, rng.int(bytes.length)),
  /** Cut inside one packet, keeping the packets before it whole. */
  truncatePacket: (rng, { bytes, offsets }) => {
    const i = rng.int(offsets.length);
    const start = offsets[i]!;
    const end = offsets[i + 1] ?? bytes.length;
    return bytes.subarray(0, start + 1 + rng.int(Math.max(1, end - start - 1)));
  },
  /** Remaining Length of one packet off by a little, random, or 5 bytes long (spec 2.2.3). */
  corruptLength: (rng, { bytes, offsets }) => {
    const at = rng.pick(offsets);
    const h = headerLength(bytes, at);
    if (h === 0) return bytes;
    let len = 0;
    for (let p = h - 1; p >= 1; p--) len = len * 128 + (bytes[at + p]! & 0x7f);
    const forms = [varint(Math.max(0, len + rng.range(-3, 3))), varint(rng.int(256)), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x01]), Buffer.from([0xff, 0xff, 0xff, 0xff]), claim(len, rng.range(1, 4))];
    return splice(bytes, at + 1, h - 1, rng.pick(forms));
  },
  /** A Remaining Length claim between 64 KiB and 256 MB, with the real body (or less) after it. */
  hugeLength: (rng, { bytes, offsets }) => {
    const at = rng.pick(offsets);
    const h = headerLength(bytes, at);
    if (h === 0) return bytes;
    const n = rng.chance(0.5) ? MAX_REMAINING_LENGTH : rng.range(65_536, MAX_REMAINING_LENGTH);
    return splice(bytes, at + 1, h - 1, varint(n));
  },
  /** A 2-byte length field inside the variable header or payload set to something else. */
  corruptStringLength: (rng, { bytes, offsets }) => {
    const at = rng.pick(offsets);
    const h = headerLength(bytes, at);
    const pos = at + h + (rng.chance(0.5) ? 0 : rng.int(Math.max(1, (offsets.find((o) => o > at) ?? bytes.length) - at - h)));
    if (h === 0 || pos + 2 > bytes.length) return bytes;
    return splice(bytes, pos, 2, u16(rng.pick([0, 1, 0xffff, 0x8000, rng.int(0x10000)])));
  },
  bitFlip: (rng, { bytes }) => {
    if (bytes.length === 0) return bytes;
    const out = Buffer.from(bytes);
    const n = rng.range(1, 3);
    for (let k = 0; k < n; k++) {
      const i = rng.int(out.length);
      out[i] = out[i]! ^ (1 << rng.int(8));
    }
    return out;
  },
  overwrite,
  insertBytes: (rng, { bytes }) => splice(bytes, rng.int(bytes.length + 1), 0, rng.chance(0.5) ? Buffer.from([rng.pick(INTERESTING_BYTES)]) : rng.bytes(rng.range(1, 8))),
  deleteBytes: (rng, { bytes }) => splice(bytes, rng.int(bytes.length + 1), rng.range(1, 4), Buffer.alloc(0)),
  /** Repeat a slice (packet duplication, stuttering). */
  duplicate: (rng, { bytes }) => {
    const at = rng.int(bytes.length + 1);
    const end = Math.min(bytes.length, at + rng.range(1, 64));
    return splice(bytes, end, 0, bytes.subarray(at, end));
  },
  /** Fixed-header flags [MQTT-2.2.2-2], PUBLISH QoS 3 [MQTT-3.3.1-4], or the CONNECT reserved flag [MQTT-3.1.2-3]. */
  reservedFlags: (rng, { bytes, offsets }) => {
    const at = rng.pick(offsets);
    if (at >= bytes.length) return bytes;
    const out = Buffer.from(bytes);
    const first = out[at]!;
    if (first >> 4 === 1 && rng.chance(0.5)) {
      // CONNECT flags byte: after the header, the protocol name and the level.
      const h = headerLength(out, at);
      const nameLen = h === 0 ? -1 : (out[at + h] ?? 0) * 256 + (out[at + h + 1] ?? 0);
      const flagsAt = at + h + 2 + nameLen + 1;
      if (h > 0 && flagsAt < out.length) {
        out[flagsAt] = out[flagsAt]! ^ rng.pick([0x01, 0x01, 0x18, 0x20, 0x40]);
        return out;
      }
    }
    out[at] = first >> 4 === 3 && rng.chance(0.5) ? first | 0x06 : first ^ rng.range(1, 15);
    return out;
  },
  /** Replace one multi-byte character with invalid UTF-8 of the same length (length fields stay true). */
  invalidUtf8: (rng, { bytes }) =>
    replaceCharacter(rng, bytes, (len) => {
      const fits = INVALID_UTF8.filter((b) => b.length <= len);
      const bad = rng.pick(fits);
      return Buffer.concat([bad, Buffer.alloc(len - bad.length, 0x61)]);
    }) ?? overwrite(rng, { bytes, offsets: [] }),
  /** Replace one multi-byte character with U+0000 [MQTT-1.5.4-2] (padded with ASCII to the same length). */
  nulCharacter: (rng, { bytes }) =>
    replaceCharacter(rng, bytes, (len) => {
      const out = Buffer.alloc(len, 0x61);
      out[rng.int(len)] = 0;
      return out;
    }) ?? bytes,
  /** Random bytes appended after the valid stream. */
  garbageTail: (rng, { bytes }) => Buffer.concat([bytes, rng.bytes(rng.range(1, 64))]),
} satisfies Record<string, Mutator>;

export type MutatorName = keyof typeof MUTATORS;
export const MUTATOR_NAMES = Object.keys(MUTATORS) as MutatorName[];

/** A hostile input: bytes, the version of the session they came from, and how they were made. */
export interface HostileInput {
  bytes: Buffer;
  version: ProtocolVersion;
  /** 'valid', 'random', 'props:<fault>' or the mutator names applied, for counting. */
  recipe: string[];
}

/**
 * One hostile input: mostly a valid stream with 1..4 mutations; some valid streams untouched (so the
 * happy path is exercised too), some pure random bytes, some MQTT 5 packets with raw property blocks.
 */
export function hostileInput(rng: Rng, options: { anyType?: boolean; clientId?: string } = {}): HostileInput {
  const version = rng.pick([3, 4, 4, 5, 5] as const);
  const kind = rng.next();
  if (kind < 0.05) return { bytes: rng.bytes(rng.range(1, 256)), version, recipe: ['random'] };
  if (kind < 0.15) {
    const fault = rng.pick(PROPERTY_FAULTS);
    const first = encodePacket(randomConnect(rng, 5, options.clientId), 5);
    const raw = rng.pick(Object.keys(RAW_V5_CONTEXT) as RawV5Kind[]);
    const props = rawPropertyBlock(rng, RAW_V5_CONTEXT[raw], fault);
    const pkt = rawV5Packet(raw, props.bytes, { packetId: rng.range(1, 0xffff) });
    return { bytes: raw === 'connect' ? pkt : Buffer.concat([first, pkt]), version: 5, recipe: [`props:${props.fault}`] };
  }
  const stream = randomStream(rng, version, options);
  if (kind < 0.22) return { bytes: stream.bytes, version, recipe: ['valid'] };
  let bytes = stream.bytes;
  const recipe: string[] = [];
  const n = rng.range(1, 4);
  for (let i = 0; i < n; i++) {
    const name = rng.pick(MUTATOR_NAMES);
    recipe.push(String(name));
    const offsets = packetOffsets(bytes);
    bytes = MUTATORS[name](rng, { bytes, offsets: offsets.length > 0 ? offsets : [0] });
  }
  return { bytes, version, recipe };
}

/** Random cut points for chunked feeding: 0..6 cuts, sometimes byte-by-byte. */
export function randomChunks(rng: Rng, bytes: Buffer): Buffer[] {
  if (bytes.length <= 1) return [bytes];
  if (rng.chance(0.1) && bytes.length <= 512) return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
  const cuts = Array.from({ length: rng.int(7) }, () => rng.int(bytes.length + 1)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}
