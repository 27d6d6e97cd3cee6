import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { goldenCases, hex, invalidCases, tooLarge, type InvalidCase } from '../../fixtures/packets.js';
import {
  MalformedPacketError,
  MqttError,
  PacketDecoder,
  PacketTooLargeError,
  UnsupportedProtocolVersionError,
  decodePacket,
  encodePacket,
  encodePublish,
  publishPacketIdOffset,
  setDupFlag,
  type Packet,
  type PublishPacket,
} from '../../../src/protocol/index.js';

function expectError(c: InvalidCase): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof c.error, `expected ${c.error.name}, got ${String(e)}`);
    for (const [k, v] of Object.entries(c.fields ?? {})) assert.equal((e as unknown as Record<string, unknown>)[k], v, k);
    return true;
  };
}

void describe('golden packets', () => {
  for (const c of goldenCases) {
    const direction = c.direction ?? 'both';
    if (direction !== 'encode') {
      void test(`${c.name}: decodes`, () => {
        assert.deepEqual(decodePacket(c.bytes, c.version), c.packet);
        assert.deepEqual(new PacketDecoder({ version: c.version }).push(c.bytes), [c.packet]);
      });
    }
    if (direction !== 'decode') {
      void test(`${c.name}: encodes`, () => {
        assert.equal(encodePacket(c.packet, c.version).toString('hex'), c.bytes.toString('hex'));
      });
    }
  }
});

/**
 * The invalid-case fixtures cite MQTT 3.1.1 statement ids. MQTT 5.0 numbers two of those rules
 * differently, so the v5 cases name the 5.0 id (docs/conformance.md reads v5 names as 5.0 citations).
 */
const V5_STATEMENT_IDS: Readonly<Record<string, string>> = {
  'MQTT-2.2.2-1': 'MQTT-2.1.3-1', // reserved fixed-header flag bits
  'MQTT-2.3.1-1': 'spec 2.2.1', // non-zero Packet Identifier (no single 5.0 id for the receiver's check)
};
const citedSpec = (c: InvalidCase): string => (c.version === 5 ? (V5_STATEMENT_IDS[c.spec] ?? c.spec) : c.spec);

void describe('invalid packets', () => {
  for (const c of invalidCases) {
    void test(`[${citedSpec(c)}] ${c.name} throws ${c.error.name}`, () => {
      assert.throws(() => decodePacket(c.bytes, c.version), expectError(c));
      assert.throws(() => new PacketDecoder({ version: c.version }).push(c.bytes), expectError(c));
    });
  }
});

const connect5 = hex('10 0f 0004 4d515454 05 02 003c 00 0002 6331');
const publish5WithProps = hex('30 07 0000 03 230001 7a');
const publish = (topic: string, payload: string, extra: Partial<PublishPacket> = {}): PublishPacket =>
  ({ type: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false, ...extra });

void describe('PacketDecoder framing', () => {
  const packets: Packet[] = [
    publish('a/b', 'one'),
    publish('c', 'two'.repeat(100), { qos: 1, packetId: 9 }),
    { type: 'pingreq' },
    { type: 'subscribe', packetId: 3, subscriptions: [{ topicFilter: 'x/#', qos: 2 }] },
  ];
  const stream = Buffer.concat(packets.map((p) => encodePacket(p, 4)));

  void test('several packets coalesced in one chunk', () => {
    assert.deepEqual(new PacketDecoder().push(stream), packets);
  });

  void test('one byte at a time', () => {
    const d = new PacketDecoder();
    const out: Packet[] = [];
    for (let i = 0; i < stream.length; i++) d.push(stream.subarray(i, i + 1), out);
    assert.deepEqual(out, packets);
  });

  void test('every two-chunk split', () => {
    for (let i = 0; i <= stream.length; i++) {
      const d = new PacketDecoder();
      const out = [...d.push(stream.subarray(0, i)), ...d.push(stream.subarray(i))];
      assert.deepEqual(out, packets, `split at ${i}`);
    }
  });

  void test('a fixed header split inside the Remaining Length', () => {
    const big = encodePacket(publish('t', 'x'.repeat(300)), 4); // 2-byte Remaining Length
    const d = new PacketDecoder();
    assert.deepEqual(d.push(big.subarray(0, 2)), []);
    assert.deepEqual(d.push(big.subarray(2)), [publish('t', 'x'.repeat(300))]);
  });

  void test('a packet larger than 64 KiB gathered from many chunks', () => {
    const big = publish('big', 'y'.repeat(200_000), { qos: 1, packetId: 2 });
    const bytes = Buffer.concat([encodePacket(big, 4), hex('c0 00')]);
    const d = new PacketDecoder();
    const out: Packet[] = [];
    for (let i = 0; i < bytes.length; i += 16_384) d.push(bytes.subarray(i, i + 16_384), out);
    assert.deepEqual(out, [big, { type: 'pingreq' }]);
  });

  void test('a PUBLISH whole inside the chunk is decoded without copying its payload', () => {
    const chunk = Buffer.concat([encodePacket(publish('t', 'hello'), 4), Buffer.from([0xc0])]);
    const [p] = new PacketDecoder().push(chunk);
    assert.ok(p?.type === 'publish');
    assert.equal(p.payload.buffer, chunk.buffer);
  });

  void test('a CONNECT switches the version for the rest of the same chunk (server side)', () => {
    const d = new PacketDecoder(); // default 4 would reject the MQTT 5 property length
    const out = d.push(Buffer.concat([connect5, publish5WithProps]));
    assert.equal(d.version, 5);
    assert.deepEqual(out[1], publish('', 'z', { properties: { topicAlias: 1 } }));
  });

  void test('[MQTT-3.6.1-1] PUBREL with DUP (6a 02 00 01) is accepted after an MQTT 3.1 CONNECT and refused after a 3.1.1 or 5.0 one', () => {
    const pubrelDup = hex('6a 02 0001');
    const connect31 = hex('10 0f 0006 4d5149736470 03 02 000a 0001 63');
    const connect311 = hex('10 0e 0004 4d515454 04 02 003c 0002 6331');
    // A decoder that starts at its default level (4) learns level 3 from the CONNECT in the same chunk.
    const d31 = new PacketDecoder();
    const out = d31.push(Buffer.concat([connect31, pubrelDup]));
    assert.equal(d31.version, 3);
    assert.deepEqual(out[1], { type: 'pubrel', packetId: 1 });
    for (const connect of [connect311, connect5]) {
      const d = new PacketDecoder({ version: 3 });
      assert.throws(() => d.push(Buffer.concat([connect, pubrelDup])), (e: unknown) =>
        e instanceof MalformedPacketError && /PUBREL fixed header flags must be 0010 \[MQTT-3\.6\.1-1\]/.test(e.message));
    }
  });

  void test('[MQTT-3.1.2-2] an unsupported level still reports the requested version', () => {
    const bytes = hex('10 0d 0004 4d515454 07 02 003c 0001 63');
    assert.throws(() => new PacketDecoder().push(bytes), (e: unknown) =>
      e instanceof UnsupportedProtocolVersionError && e.requestedVersion === 7 && e.nameRecognised);
  });

  void test('packets decoded before an error are kept in the caller\'s array', () => {
    const out: Packet[] = [];
    assert.throws(() => new PacketDecoder().push(Buffer.concat([hex('c0 00'), hex('00 00')]), out), MalformedPacketError);
    assert.deepEqual(out, [{ type: 'pingreq' }]);
  });

  void test('maximum packet size: rejected as soon as the fixed header is known', () => {
    const d = new PacketDecoder({ maxPacketSize: tooLarge.size - 1 });
    assert.throws(() => d.push(tooLarge.bytes.subarray(0, 2)), PacketTooLargeError);
    const exact = new PacketDecoder({ maxPacketSize: tooLarge.size });
    assert.equal(exact.push(tooLarge.bytes).length, 1);
  });

  void test('maximum packet size: a header split across chunks is checked too', () => {
    const d = new PacketDecoder({ maxPacketSize: 100 });
    d.push(hex('30 ff'));
    assert.throws(() => d.push(hex('ff 7f')), PacketTooLargeError);
  });

  void test('a five-byte Remaining Length is malformed even across chunks', () => {
    const d = new PacketDecoder();
    d.push(hex('30 ff ff'));
    assert.throws(() => d.push(hex('ff ff 01')), MalformedPacketError);
  });

  void test('decodePacket rejects missing and extra bytes', () => {
    assert.throws(() => decodePacket(hex('30 05 0001 74'), 4), MalformedPacketError);
    assert.throws(() => decodePacket(hex('c0 00 00'), 4), MalformedPacketError);
    assert.throws(() => decodePacket(hex('c0'), 4), MalformedPacketError);
  });
});

void describe('strings', () => {
  void test('[MQTT-3.3.2-1] a PUBLISH variable header starts with the topic name as a length-prefixed UTF-8 string', () => {
    // "é/t" is c3 a9 2f 74 in UTF-8: 4 bytes, not 3 characters.
    const bytes = hex('32 09 0004 c3a92f74 0102 78');
    const packet = publish('\u00e9/t', 'x', { qos: 1, packetId: 0x0102 });
    assert.equal(encodePacket(packet, 4).toString('hex'), bytes.toString('hex'));
    assert.deepEqual(decodePacket(bytes, 4), packet);
  });

  void test('[MQTT-1.5.3-3] a BOM (EF BB BF) is decoded as U+FEFF, not skipped or stripped, and encoded back unchanged', () => {
    const bytes = hex('30 07 0004 efbbbf74 78');
    const decoded = decodePacket(bytes, 4);
    assert.deepEqual(decoded, publish('\ufefft', 'x'));
    assert.equal(encodePacket(decoded, 4).toString('hex'), bytes.toString('hex'));
    const subscribe = hex('82 09 0001 0004 efbbbf61 01');
    assert.deepEqual(decodePacket(subscribe, 4), { type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '\ufeffa', qos: 1 }] });
  });
});

void describe('encoder fast paths', () => {
  void test('publishPacketIdOffset points at the packet id, for 1- and 2-byte Remaining Lengths', () => {
    for (const size of [1, 500]) {
      for (const version of [4, 5] as const) {
        const p = publish('topic/é', 'x'.repeat(size), { qos: 1, packetId: 0x0a0b, properties: { contentType: 'c' } });
        const bytes = encodePublish(p, version);
        const off = publishPacketIdOffset(bytes);
        assert.equal(bytes.readUInt16BE(off), 0x0a0b);
        const patched = Buffer.from(bytes);
        patched.writeUInt16BE(77, off);
        const { properties, ...withoutProperties } = p;
        const expected = version === 5 ? { ...p, packetId: 77 } : { ...withoutProperties, packetId: 77 };
        assert.ok(properties);
        assert.deepEqual(decodePacket(patched, version), expected);
      }
    }
  });

  void test('a QoS > 0 PUBLISH template without packet id has 0 in the id field', () => {
    const bytes = encodePublish(publish('t', '', { qos: 2 }), 4);
    assert.equal(bytes.readUInt16BE(publishPacketIdOffset(bytes)), 0);
  });

  void test('setDupFlag returns a copy with DUP set', () => {
    const bytes = encodePublish(publish('t', 'p', { qos: 1, packetId: 1 }), 4);
    const dup = setDupFlag(bytes);
    assert.notEqual(dup, bytes);
    assert.equal(bytes[0], 0x32);
    assert.deepEqual(decodePacket(dup, 4), publish('t', 'p', { qos: 1, packetId: 1, dup: true }));
  });

  void test('PINGREQ, PINGRESP and an empty DISCONNECT are preallocated', () => {
    assert.equal(encodePacket({ type: 'pingreq' }, 4), encodePacket({ type: 'pingreq' }, 5));
    assert.equal(encodePacket({ type: 'pingresp' }, 4), encodePacket({ type: 'pingresp' }, 3));
    assert.equal(encodePacket({ type: 'disconnect' }, 4), encodePacket({ type: 'disconnect', reasonCode: 0 }, 5));
  });

  void test('a topic longer than 65535 bytes cannot be encoded', () => {
    assert.throws(() => encodePacket(publish('a'.repeat(70_000), ''), 4), MqttError);
  });
});
