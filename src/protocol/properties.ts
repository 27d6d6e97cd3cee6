/** MQTT 5 properties (spec 2.2.2): the property table, per-packet allowed sets, decode and encode. */
import { MalformedPacketError, ProtocolViolationError } from './errors.js';
import { Reader, type Writer, MAX_VARINT, utf8Length, varintSize } from './primitives.js';
import { ReasonCode } from './reason-codes.js';
import { validateTopicName } from './topic.js';
import type { Properties, UserProperty } from './types.js';

/** Where a property may appear: one bit per packet type, plus the will properties of CONNECT. */
export const PropertyContext = {
  connect: 1 << 0,
  connack: 1 << 1,
  publish: 1 << 2,
  will: 1 << 3,
  puback: 1 << 4,
  pubrec: 1 << 5,
  pubrel: 1 << 6,
  pubcomp: 1 << 7,
  subscribe: 1 << 8,
  suback: 1 << 9,
  unsubscribe: 1 << 10,
  unsuback: 1 << 11,
  disconnect: 1 << 12,
  auth: 1 << 13,
} as const;

/** Name of a property context (a packet type, or `will`). */
export type PropertyContextName = keyof typeof PropertyContext;

/** Wire data type of a property value (spec 1.5). */
export type PropertyType = 'byte' | 'u16' | 'u32' | 'varint' | 'utf8' | 'pair' | 'binary';

/** Extra value rule: `bool` = 0 or 1; `nonzero` = 0 is a protocol error; `topic` = a valid topic name. */
type ValueRule = 'bool' | 'nonzero' | 'topic' | 'none';

/** One row of the property table (spec 2.2.2.2). */
export interface PropertyDefinition {
  readonly id: number;
  readonly key: keyof Properties;
  readonly type: PropertyType;
  /** Bit set of PropertyContext values where the property is allowed. */
  readonly contexts: number;
  /** Bit set of contexts where it may appear more than once. */
  readonly repeatable: number;
  readonly rule: ValueRule;
}

const C = PropertyContext;
const ALL = C.connect | C.connack | C.publish | C.will | C.puback | C.pubrec | C.pubrel | C.pubcomp |
  C.subscribe | C.suback | C.unsubscribe | C.unsuback | C.disconnect | C.auth;
const MESSAGE = C.publish | C.will;
const ACKS = C.puback | C.pubrec | C.pubrel | C.pubcomp;

function def(id: number, key: keyof Properties, type: PropertyType, contexts: number,
  rule: ValueRule = 'none', repeatable = 0): PropertyDefinition {
  return { id, key, type, contexts, repeatable, rule };
}

/** The full MQTT 5 property table, in identifier order. */
export const PROPERTY_TABLE: readonly PropertyDefinition[] = [
  def(0x01, 'payloadFormatIndicator', 'byte', MESSAGE, 'bool'),
  def(0x02, 'messageExpiryInterval', 'u32', MESSAGE),
  def(0x03, 'contentType', 'utf8', MESSAGE),
  def(0x08, 'responseTopic', 'utf8', MESSAGE, 'topic'), // [MQTT-3.3.2-14]
  def(0x09, 'correlationData', 'binary', MESSAGE),
  def(0x0b, 'subscriptionIdentifiers', 'varint', C.publish | C.subscribe, 'nonzero', C.publish),
  def(0x11, 'sessionExpiryInterval', 'u32', C.connect | C.connack | C.disconnect),
  def(0x12, 'assignedClientIdentifier', 'utf8', C.connack),
  def(0x13, 'serverKeepAlive', 'u16', C.connack),
  def(0x15, 'authenticationMethod', 'utf8', C.connect | C.connack | C.auth),
  def(0x16, 'authenticationData', 'binary', C.connect | C.connack | C.auth),
  def(0x17, 'requestProblemInformation', 'byte', C.connect, 'bool'),
  def(0x18, 'willDelayInterval', 'u32', C.will),
  def(0x19, 'requestResponseInformation', 'byte', C.connect, 'bool'),
  def(0x1a, 'responseInformation', 'utf8', C.connack),
  def(0x1c, 'serverReference', 'utf8', C.connack | C.disconnect),
  def(0x1f, 'reasonString', 'utf8', C.connack | ACKS | C.suback | C.unsuback | C.disconnect | C.auth),
  def(0x21, 'receiveMaximum', 'u16', C.connect | C.connack, 'nonzero'),
  def(0x22, 'topicAliasMaximum', 'u16', C.connect | C.connack),
  def(0x23, 'topicAlias', 'u16', C.publish, 'nonzero'),
  def(0x24, 'maximumQoS', 'byte', C.connack, 'bool'),
  def(0x25, 'retainAvailable', 'byte', C.connack, 'bool'),
  def(0x26, 'userProperties', 'pair', ALL, 'none', ALL),
  def(0x27, 'maximumPacketSize', 'u32', C.connect | C.connack, 'nonzero'),
  def(0x28, 'wildcardSubscriptionAvailable', 'byte', C.connack, 'bool'),
  def(0x29, 'subscriptionIdentifiersAvailable', 'byte', C.connack, 'bool'),
  def(0x2a, 'sharedSubscriptionAvailable', 'byte', C.connack, 'bool'),
];

const BY_ID: (PropertyDefinition | undefined)[] = [];
for (const d of PROPERTY_TABLE) BY_ID[d.id] = d;

/** Checks the value rules of spec 3.x.2.x; each violation is a Protocol Error. */
function checkValue(d: PropertyDefinition, v: number | string | Buffer): void {
  switch (d.rule) {
    case 'bool':
      if (v !== 0 && v !== 1) throw new ProtocolViolationError(`property ${d.key} must be 0 or 1, got ${String(v)}`);
      return;
    case 'nonzero':
      if (v === 0) {
        // A Topic Alias of 0 gets its own reason code [MQTT-3.3.2-8]; the others are plain protocol errors.
        const rc = d.key === 'topicAlias' ? ReasonCode.topicAliasInvalid : ReasonCode.protocolError;
        throw new ProtocolViolationError(`property ${d.key} must not be 0`, rc);
      }
      return;
    case 'topic':
      validateTopicName(v as string);
      return;
    case 'none':
      return;
  }
}

/**
 * Reads a Property Length and the properties after it, for a packet of the given context. Returns
 * undefined when there are none. An identifier not allowed in the context is a Malformed Packet
 * (spec 2.2.2.2); a property repeated where it may appear once is a Protocol Error.
 */
export function decodeProperties(r: Reader, context: number): Properties | undefined {
  const len = r.varint();
  if (len === 0) return undefined;
  const end = r.pos + len;
  if (end > r.end) throw new MalformedPacketError('property length exceeds the packet');
  const p = new Reader(r.buf, r.pos, end);
  const props: Properties = {};
  const bag = props as Record<string, unknown>;
  while (p.pos < end) {
    const id = p.varint();
    const d = BY_ID[id];
    if (d === undefined) throw new MalformedPacketError(`unknown property identifier 0x${id.toString(16)}`);
    if ((d.contexts & context) === 0) {
      throw new MalformedPacketError(`property ${d.key} is not allowed in this packet (spec 2.2.2.2)`);
    }
    if (d.type === 'pair') {
      const pair: UserProperty = [p.utf8(), p.utf8()];
      (props.userProperties ??= []).push(pair);
      continue;
    }
    const value = readValue(p, d.type);
    checkValue(d, value);
    if (d.key === 'subscriptionIdentifiers') {
      const ids = props.subscriptionIdentifiers;
      if (ids === undefined) props.subscriptionIdentifiers = [value as number];
      else if ((d.repeatable & context) !== 0) ids.push(value as number);
      else throw new ProtocolViolationError('subscription identifier appears more than once');
      continue;
    }
    if (bag[d.key] !== undefined) throw new ProtocolViolationError(`property ${d.key} appears more than once`);
    bag[d.key] = value;
  }
  r.pos = end;
  return props;
}

function readValue(p: Reader, type: PropertyType): number | string | Buffer {
  switch (type) {
    case 'byte': return p.u8();
    case 'u16': return p.u16();
    case 'u32': return p.u32();
    case 'varint': return p.varint();
    case 'utf8': return p.utf8();
    case 'binary': return p.binary();
    case 'pair': throw new Error('unreachable: pairs are read by the caller');
  }
}

/** Property definitions by Properties key. */
const BY_KEY = new Map<string, PropertyDefinition>(PROPERTY_TABLE.map((d) => [d.key, d]));

/**
 * Byte length of the properties (without their Property Length prefix); 0 for none. Properties are
 * written in the object's key order (a decoded packet keeps its wire order); the spec gives order no
 * meaning between different identifiers (spec 2.2.2.2).
 */
export function propertiesLength(props: Properties | undefined): number {
  if (props === undefined) return 0;
  const bag = props as Record<string, unknown>;
  let n = 0;
  for (const key in bag) {
    const v = bag[key];
    if (v === undefined) continue;
    const d = BY_KEY.get(key);
    if (d === undefined) throw new MalformedPacketError(`unknown property ${key}`);
    switch (d.type) {
      case 'byte': n += 2; break;
      case 'u16': n += 3; break;
      case 'u32': n += 5; break;
      case 'varint':
        for (const id of v as number[]) n += 1 + varintSize(checkVarint(id));
        break;
      case 'utf8': n += 3 + utf8Length(v as string); break;
      case 'binary': n += 3 + (v as Buffer).length; break;
      case 'pair':
        for (const [k, val] of v as UserProperty[]) n += 5 + utf8Length(k) + utf8Length(val);
        break;
    }
  }
  return n;
}

function checkVarint(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_VARINT) throw new MalformedPacketError(`${n} does not fit a Variable Byte Integer`);
  return n;
}

/** Bytes taken by a properties section on the wire: Property Length plus the properties. */
export function propertiesSectionSize(length: number): number {
  return varintSize(length) + length;
}

/** Writes Property Length `length` (from propertiesLength) and then the properties, in key order. */
export function writeProperties(w: Writer, props: Properties | undefined, length: number): void {
  w.varint(length);
  if (props === undefined || length === 0) return;
  const bag = props as Record<string, unknown>;
  for (const key in bag) {
    const v = bag[key];
    const d = BY_KEY.get(key);
    if (v === undefined || d === undefined) continue;
    switch (d.type) {
      case 'byte': w.u8(d.id); w.u8(v as number); break;
      case 'u16': w.u8(d.id); w.u16(v as number); break;
      case 'u32': w.u8(d.id); w.u32(v as number); break;
      case 'varint':
        for (const id of v as number[]) { w.u8(d.id); w.varint(id); }
        break;
      case 'utf8': { const s = v as string; w.u8(d.id); w.utf8(s, Buffer.byteLength(s, 'utf8')); break; }
      case 'binary': w.u8(d.id); w.binary(v as Buffer); break;
      case 'pair':
        for (const [k, val] of v as UserProperty[]) {
          w.u8(d.id);
          w.utf8(k, Buffer.byteLength(k, 'utf8'));
          w.utf8(val, Buffer.byteLength(val, 'utf8'));
        }
        break;
    }
  }
}
