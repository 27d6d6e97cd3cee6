/**
 * Decoder fuzz (issue 5, item 7), bounded and seeded: ~20,000 hostile inputs from test/fuzz/harness.ts.
 * Whatever the bytes, the decoder only throws MqttError subclasses, never hangs, never reserves memory
 * for bytes a client only announced, and gives the same result fed whole or in chunks.
 *
 * Another seed: STARLING_FUZZ_SEED=123 node --import tsx --test test/unit/protocol/decoder.fuzz.test.ts
 * Longer runs: bench/fuzz-long.ts (docs/security.md, "Hostile input").
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  MqttError,
  PacketDecoder,
  decodePacket,
  encodePacket,
  type Packet,
  type ProtocolVersion,
} from '../../../src/protocol/index.js';
import {
  MAX_REMAINING_LENGTH,
  MUTATOR_NAMES,
  PROPERTY_FAULTS,
  RAW_V5_CONTEXT,
  type RawV5Kind,
  createRng,
  hostileInput,
  packetTypes,
  randomChunks,
  randomConnect,
  randomPacket,
  rawPropertyBlock,
  rawV5Packet,
  varint,
} from '../../fuzz/harness.js';

const SEED = Number(process.env['STARLING_FUZZ_SEED'] ?? 0x5eed_0005);
const RUNS = Number(process.env['STARLING_FUZZ_RUNS'] ?? 20_000);
/** A single push taking longer than this is treated as a hang (generous: CI machines are slow). */
const HANG_MS = 250;

/** What feeding bytes to a decoder gave: the packets decoded, then the error (if any). */
interface Outcome {
  packets: Packet[];
  error: string | undefined;
}

/** Runs `fn`; a throw that is not an MqttError fails with the input in hex, for reproduction. */
function onlyMqttErrors(what: string, input: Buffer, fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof MqttError) return `${error.name}/${error.code}: ${error.message}`;
    assert.fail(`${what}: threw ${String(error)} (not an MqttError) on input ${input.toString('hex')}`);
  }
}

function feed(input: Buffer, chunks: Buffer[], version: ProtocolVersion, maxPacketSize: number | undefined): Outcome {
  const decoder = new PacketDecoder(maxPacketSize === undefined ? { version } : { version, maxPacketSize });
  const packets: Packet[] = [];
  const error = onlyMqttErrors('PacketDecoder.push', input, () => {
    for (const chunk of chunks) {
      const started = performance.now();
      decoder.push(chunk, packets);
      const ms = performance.now() - started;
      assert.ok(ms < HANG_MS, `push of ${chunk.length} bytes took ${ms.toFixed(0)} ms on input ${input.toString('hex')}`);
    }
  });
  return { packets, error };
}

describe('decoder fuzz (seeded, bounded)', () => {
  test('the generators make valid packets of every type, version 3, 4 and 5, with random MQTT 5 property sets', () => {
    const rng = createRng(SEED);
    let withProperties = 0;
    for (const version of [3, 4, 5] as const) {
      for (const type of packetTypes(version)) {
        for (let i = 0; i < 100; i++) {
          const packet = randomPacket(rng, version, type);
          if ('properties' in packet && packet.properties !== undefined) withProperties++;
          assert.deepEqual(decodePacket(encodePacket(packet, version), version), packet, `${type} v${version}`);
        }
      }
    }
    assert.ok(withProperties > 500, `only ${withProperties} packets carried properties`);
  });

  test('raw MQTT 5 property blocks (spec 2.2.2.2): each broken rule is refused with an MqttError, a clean block decodes', () => {
    const rng = createRng(SEED + 1);
    const kinds = Object.keys(RAW_V5_CONTEXT) as RawV5Kind[];
    const refused = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const kind = kinds[i % kinds.length]!;
      const props = rawPropertyBlock(rng, RAW_V5_CONTEXT[kind], PROPERTY_FAULTS[Math.floor(i / kinds.length) % PROPERTY_FAULTS.length]!);
      const bytes = rawV5Packet(kind, props.bytes);
      const error = onlyMqttErrors('decodePacket', bytes, () => void decodePacket(bytes, 5));
      if (props.fault === 'none') assert.equal(error, undefined, `clean ${kind} properties refused: ${bytes.toString('hex')}`);
      else {
        assert.ok(error !== undefined, `${kind} with fault ${props.fault} was accepted: ${bytes.toString('hex')}`);
        refused.set(props.fault, (refused.get(props.fault) ?? 0) + 1);
      }
    }
    for (const fault of PROPERTY_FAULTS.filter((f) => f !== 'none')) assert.ok((refused.get(fault) ?? 0) > 50, `fault ${fault} barely exercised`);
  });

  test(`${RUNS} hostile inputs (seed ${SEED}): only MqttError, no hang, chunked feeding = whole feeding`, { timeout: 60_000 }, (t) => {
    const rng = createRng(SEED);
    const recipes = new Map<string, number>();
    const errors = new Map<string, number>();
    let decoded = 0;
    const started = performance.now();
    for (let i = 0; i < RUNS; i++) {
      const input = hostileInput(rng, { anyType: rng.chance(0.3) });
      for (const r of input.recipe) recipes.set(r, (recipes.get(r) ?? 0) + 1);
      // One-shot decoding of the whole input, in every version.
      for (const v of [3, 4, 5] as const) onlyMqttErrors(`decodePacket v${v}`, input.bytes, () => void decodePacket(input.bytes, v));
      // Stream decoding: whole, then in random chunks (sometimes byte by byte), with the protocol
      // maximum or a small packet size limit.
      const maxPacketSize = rng.chance(0.3) ? rng.pick([64, 1024, 65_536]) : undefined;
      const whole = feed(input.bytes, [input.bytes], input.version, maxPacketSize);
      const chunked = feed(input.bytes, randomChunks(rng, input.bytes), input.version, maxPacketSize);
      assert.deepEqual(chunked, whole, `chunked and whole feeding differ on ${input.bytes.toString('hex')} (recipe ${input.recipe.join('+')})`);
      decoded += whole.packets.length;
      const kind = whole.error?.split(':')[0] ?? 'none';
      errors.set(kind, (errors.get(kind) ?? 0) + 1);
    }
    const ms = performance.now() - started;
    t.diagnostic(`${RUNS} inputs in ${ms.toFixed(0)} ms; ${decoded} packets decoded; outcomes ${JSON.stringify(Object.fromEntries(errors))}`);
    t.diagnostic(`recipes ${JSON.stringify(Object.fromEntries(recipes))}`);
    // The inputs reach every mutator and every error class, and some still decode.
    for (const name of MUTATOR_NAMES) assert.ok((recipes.get(name) ?? 0) > RUNS / 50, `mutator ${name} barely used`);
    for (const kind of ['MalformedPacketError/ERR_MALFORMED_PACKET', 'ProtocolViolationError/ERR_PROTOCOL_VIOLATION', 'PacketTooLargeError/ERR_PACKET_TOO_LARGE', 'UnsupportedProtocolVersionError/ERR_UNSUPPORTED_PROTOCOL_VERSION']) {
      assert.ok((errors.get(kind) ?? 0) > 0, `no input produced ${kind}`);
    }
    assert.ok(decoded > RUNS / 2, `only ${decoded} packets decoded: the inputs are all garbage`);
  });

  test('256 MB Remaining Length claims (spec 2.2.3) reserve no memory for bytes never sent', () => {
    const decoders: PacketDecoder[] = [];
    const count = 200;
    // Warm up allocation paths so the measurement shows the claims, not first-use costs.
    new PacketDecoder().push(Buffer.concat([Buffer.from([0x30]), varint(MAX_REMAINING_LENGTH), Buffer.alloc(10)]));
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < count; i++) {
      const decoder = new PacketDecoder();
      const first = i % 2 === 0 ? 0x10 : 0x30;
      const header = Buffer.concat([Buffer.from([first]), varint(MAX_REMAINING_LENGTH)]);
      if (i % 4 < 2) {
        decoder.push(Buffer.concat([header, Buffer.alloc(100, 0x61)]));
      } else {
        // The header split byte by byte (the carried-over header path), then a little body.
        for (const b of header) decoder.push(Buffer.from([b]));
        decoder.push(Buffer.alloc(100, 0x61));
      }
      decoders.push(decoder);
    }
    const deltaMb = (process.memoryUsage().arrayBuffers - before) / 2 ** 20;
    assert.equal(decoders.length, count);
    assert.ok(deltaMb < 4, `${count} decoders holding a 256 MB claim and 100 body bytes each grew arrayBuffers by ${deltaMb.toFixed(1)} MiB`);
  });

  test('a 256 MB claim fed in 1-byte chunks stays linear in time and bounded in memory', () => {
    const decoder = new PacketDecoder();
    decoder.push(encodePacket(randomConnect(createRng(SEED), 4), 4));
    decoder.push(Buffer.concat([Buffer.from([0x30]), varint(MAX_REMAINING_LENGTH)]));
    const bytes = 50_000;
    const before = process.memoryUsage();
    const started = performance.now();
    const one = Buffer.from([0x61]);
    for (let i = 0; i < bytes; i++) decoder.push(one);
    const ms = performance.now() - started;
    const after = process.memoryUsage();
    const grownMb = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20;
    assert.ok(ms < 2000, `${bytes} one-byte pushes took ${ms.toFixed(0)} ms`);
    // Each pushed chunk is kept as a view until the packet completes; bound the cost per byte received.
    assert.ok(grownMb < 64, `${bytes} bytes received grew the heap by ${grownMb.toFixed(1)} MiB`);
  });

  test('a packet over maxPacketSize is refused from its fixed header, before its body arrives', () => {
    for (const [claimed, max] of [[MAX_REMAINING_LENGTH, 65_536], [65_536, 1024], [200, 64]] as const) {
      const decoder = new PacketDecoder({ maxPacketSize: max });
      assert.throws(() => decoder.push(Buffer.concat([Buffer.from([0x30]), varint(claimed)])), { code: 'ERR_PACKET_TOO_LARGE' });
    }
  });
});
