/**
 * Long hostile-input fuzz run (issue 5, item 7): the decoder and a live broker, for as long as asked,
 * with the generators and mutators of test/fuzz/harness.ts. Stops by itself.
 *
 *   node --import tsx bench/fuzz-long.ts --seconds 600 --seed 42
 *
 * Options: --seconds N (default 60), --seed N (default: random, printed), --mode all|decoder|broker
 * (default all), --concurrency N hostile sockets at once (default 50), --max-rss-mb N (default 1024),
 * --session-expiry S (default 60: bounds the persistent sessions hostile clients leave behind).
 *
 * The broker runs in a child process (test/fuzz/broker-child.ts) on 127.0.0.1, so a crash is seen as
 * an exit. Prints progress every 10 s and a summary; exits 1 on any non-MqttError from the decoder, a
 * chunked/whole mismatch, a broker crash, broker RSS over the limit, a leaked connection, or a lost
 * or disconnected well-behaved client. Failing decoder inputs are printed in hex with the seed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { MqttError, PacketDecoder, decodePacket, type Packet, type ProtocolVersion } from '../src/protocol/index.js';
import type { ChildStats } from '../test/fuzz/broker-child.js';
import { MAX_REMAINING_LENGTH, createRng, hostileInput, randomChunks, varint, type Rng } from '../test/fuzz/harness.js';
import { SideClient, sendOne, sleep, slowloris, subscribeFlood, type SocketOutcome } from '../test/fuzz/live.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    mode: { type: 'string', default: 'all' },
    concurrency: { type: 'string', default: '50' },
    'max-rss-mb': { type: 'string', default: '1024' },
    'session-expiry': { type: 'string', default: '60' },
  },
});
const seconds = Number(values.seconds);
const seed = values.seed === undefined ? Math.floor(Math.random() * 0x1_0000_0000) : Number(values.seed);
const mode = values.mode;
const concurrency = Number(values.concurrency);
const maxRssMb = Number(values['max-rss-mb']);
if (!(seconds > 0) || !Number.isInteger(seed) || !['all', 'decoder', 'broker'].includes(mode) || !(concurrency > 0)) {
  console.error('usage: node --import tsx bench/fuzz-long.ts [--seconds N] [--seed N] [--mode all|decoder|broker] [--concurrency N] [--max-rss-mb N] [--session-expiry S]');
  process.exit(2);
}

const LIMITS = { connectTimeout: 2, maxPacketSize: 64 * 1024, maxSubscriptionsPerClient: 100, maxTopicLevels: 16, maxSessionExpiry: Number(values['session-expiry']) };
const deadline = Date.now() + seconds * 1000;
const failures: string[] = [];
function fail(message: string): void {
  failures.push(message);
  console.error(`FAIL: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Decoder

const decoderCounts = { inputs: 0, packets: 0, errors: {} as Record<string, number> };

function feed(chunks: Buffer[], version: ProtocolVersion, maxPacketSize: number | undefined, hex: string): { packets: Packet[]; error: string | undefined } {
  const decoder = new PacketDecoder(maxPacketSize === undefined ? { version } : { version, maxPacketSize });
  const packets: Packet[] = [];
  try {
    for (const chunk of chunks) {
      const started = performance.now();
      decoder.push(chunk, packets);
      if (performance.now() - started > 1000) fail(`decoder: a push took over 1 s (seed ${seed}, input ${hex})`);
    }
    return { packets, error: undefined };
  } catch (error) {
    if (error instanceof MqttError) return { packets, error: `${error.name}: ${error.message}` };
    fail(`decoder: non-MqttError ${String(error)} (seed ${seed}, input ${hex})`);
    return { packets, error: 'non-MqttError' };
  }
}

function decoderBatch(rng: Rng, n: number): void {
  for (let i = 0; i < n; i++) {
    const input = hostileInput(rng, { anyType: rng.chance(0.3) });
    const hex = input.bytes.toString('hex');
    for (const v of [3, 4, 5] as const) {
      try {
        decodePacket(input.bytes, v);
      } catch (error) {
        if (!(error instanceof MqttError)) fail(`decodePacket v${v}: non-MqttError ${String(error)} (seed ${seed}, input ${hex})`);
      }
    }
    const max = rng.chance(0.3) ? rng.pick([64, 1024, 65_536]) : undefined;
    const whole = feed([input.bytes], input.version, max, hex);
    const chunked = feed(randomChunks(rng, input.bytes), input.version, max, hex);
    if (!isDeepStrictEqual(whole, chunked)) fail(`decoder: chunked feeding differs from whole feeding (seed ${seed}, input ${hex})`);
    decoderCounts.inputs++;
    decoderCounts.packets += whole.packets.length;
    const kind = whole.error?.split(':')[0] ?? 'none';
    decoderCounts.errors[kind] = (decoderCounts.errors[kind] ?? 0) + 1;
  }
}

async function runDecoder(rng: Rng, until: number): Promise<void> {
  while (Date.now() < until && failures.length < 20) {
    decoderBatch(rng, 200);
    await new Promise<void>((resolve) => setImmediate(resolve)); // let the socket fuzzer run
  }
}

// ---------------------------------------------------------------------------------------------
// Live broker

const brokerCounts = { inputs: 0, slowloris: 0, floods: 0, claims: 0, outcomes: { 'closed-by-broker': 0, 'closed-by-client': 0, 'connect-error': 0 } as Record<SocketOutcome, number> };
let child: ChildProcess | undefined;
let childExited = false;
let lastStats: ChildStats | undefined;
let peakRssMb = 0;
let stopping = false;

function startChild(): Promise<number> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '../test/fuzz/broker-child.ts');
  return new Promise((resolve, reject) => {
    const c = fork(script, [JSON.stringify(LIMITS)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child = c;
    c.on('message', (message: { type: 'ready'; port: number } | ChildStats) => {
      if (message.type === 'ready') resolve(message.port);
      if (message.type === 'stats') {
        lastStats = message;
        peakRssMb = Math.max(peakRssMb, lastStats.rssMb);
        if (lastStats.rssMb > maxRssMb) fail(`broker RSS ${lastStats.rssMb.toFixed(0)} MiB over --max-rss-mb ${maxRssMb}`);
      }
    });
    c.on('exit', (code, signal) => {
      childExited = true;
      if (!stopping) fail(`broker process exited (code ${code}, signal ${signal ?? '-'}) during the run: crash (seed ${seed})`);
      reject(new Error('broker exited'));
    });
  });
}

async function childStats(): Promise<ChildStats | undefined> {
  if (child === undefined || childExited) return undefined;
  const before = lastStats;
  child.send({ type: 'stats' });
  for (let i = 0; i < 100 && lastStats === before; i++) await sleep(10);
  return lastStats;
}

async function brokerWorker(port: number, rng: Rng, until: number): Promise<void> {
  let n = 0;
  while (Date.now() < until && !childExited && failures.length < 20) {
    const kind = rng.next();
    try {
      if (kind < 0.03) {
        brokerCounts.slowloris++;
        const r = await slowloris(port, rng.chance(0.5) ? 'silent' : 'drip', { dripMs: rng.range(100, 600), version: rng.pick([3, 4, 5] as const), rng: rng.fork(), hardMs: LIMITS.connectTimeout * 1000 + 5000 });
        if (!r.closedByBroker) fail(`slowloris socket not closed by the broker within ${r.closedAfterMs} ms`);
      } else if (kind < 0.05) {
        brokerCounts.floods++;
        const v = rng.pick([4, 5] as const);
        const subacks = await subscribeFlood(port, { version: v, clientId: `flood-${rng.int(1e9)}`, packets: rng.range(1, 10), filtersPerPacket: rng.range(1, 200) });
        const granted = subacks.flatMap((s) => s.reasonCodes).filter((c) => c < 0x80).length;
        if (granted > LIMITS.maxSubscriptionsPerClient) fail(`SUBSCRIBE flood: ${granted} filters granted over maxSubscriptionsPerClient ${LIMITS.maxSubscriptionsPerClient}`);
      } else if (kind < 0.08) {
        brokerCounts.claims++;
        const claim = Buffer.concat([Buffer.from([rng.pick([0x10, 0x30, 0x82])]), varint(rng.chance(0.5) ? MAX_REMAINING_LENGTH : rng.range(65_537, MAX_REMAINING_LENGTH)), rng.bytes(rng.int(2000))]);
        brokerCounts.outcomes[await sendOne(port, [claim], { lingerMs: 500 })]++;
      } else {
        const input = hostileInput(rng, { clientId: `lz${n++}-${rng.int(1e6)}` });
        const chunks = rng.chance(0.2) ? randomChunks(rng, input.bytes).slice(0, 16) : [input.bytes];
        brokerCounts.outcomes[await sendOne(port, chunks, { abrupt: rng.chance(0.3) })]++;
        brokerCounts.inputs++;
      }
    } catch (error) {
      if (!childExited) fail(`broker scenario failed: ${(error as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

console.log(`fuzz-long: seed ${seed}, ${seconds} s, mode ${mode}, concurrency ${concurrency}, broker limits ${JSON.stringify(LIMITS)}`);
const root = createRng(seed);
const started = Date.now();
const tasks: Promise<void>[] = [];
let side: SideClient | undefined;

if (mode !== 'broker') tasks.push(runDecoder(root.fork(), deadline));
if (mode !== 'decoder') {
  const port = await startChild();
  side = await SideClient.start(port, { clientId: 'fuzz-long-side', intervalMs: 20 });
  for (let i = 0; i < concurrency; i++) tasks.push(brokerWorker(port, root.fork(), deadline));
}

const progress = setInterval(() => {
  void (async () => {
    const s = await childStats();
    const sideReport = side?.check(5000);
    const elapsed = ((Date.now() - started) / 1000).toFixed(0);
    console.log(
      `[${elapsed}s] decoder ${decoderCounts.inputs} inputs` +
        (mode === 'decoder' ? '' : ` | broker ${brokerCounts.inputs} inputs, ${brokerCounts.slowloris} slowloris, ${brokerCounts.floods} floods, ${brokerCounts.claims} claims, ${JSON.stringify(brokerCounts.outcomes)}`) +
        (s === undefined ? '' : ` | broker rss ${s.rssMb.toFixed(0)} MiB, heap ${s.heapUsedMb.toFixed(0)} MiB, ${s.connections} conns, ${s.sessions} sessions, ${s.subscriptions} subs, ${s.protocolErrors} protocol errors`) +
        (sideReport === undefined ? '' : ` | side ${sideReport.published} sent, ${sideReport.missing} late, max rtt ${sideReport.maxRoundTripMs} ms`),
    );
    if (sideReport !== undefined && (sideReport.closes > 0 || !sideReport.connected)) fail('the well-behaved client was disconnected');
  })();
}, 10_000);

await Promise.all(tasks);
clearInterval(progress);

if (side !== undefined) {
  const report = await side.stop(5000).catch((error: unknown) => {
    fail(`side client: ${String(error)}`);
    return undefined;
  });
  if (report !== undefined) {
    console.log(`side client: ${report.published} QoS 1 messages, ${report.missing} missing, max round trip ${report.maxRoundTripMs} ms, ${report.closes} disconnects`);
    if (report.missing > 0) fail(`the well-behaved client lost ${report.missing} of ${report.published} QoS 1 messages`);
    if (report.closes > 0) fail('the well-behaved client was disconnected');
  }
}
if (child !== undefined && !childExited) {
  // Every hostile socket is closed on our side: the broker must come back to no connection.
  let s = await childStats();
  for (let i = 0; i < 50 && s !== undefined && s.connections > 0; i++) {
    await sleep(100);
    s = await childStats();
  }
  if (s !== undefined) {
    console.log(`broker at the end: rss ${s.rssMb.toFixed(0)} MiB (peak ${peakRssMb.toFixed(0)}), ${s.connections} connections, ${s.sessions} sessions, ${s.subscriptions} subscriptions, ${s.protocolErrors} protocol errors`);
    if (s.connections > 0) fail(`${s.connections} connections leaked`);
  }
  stopping = true;
  child.send({ type: 'stop' });
  await new Promise<void>((resolve) => {
    if (childExited) resolve();
    else child?.once('exit', () => resolve());
  });
}

console.log(`decoder: ${decoderCounts.inputs} inputs, ${decoderCounts.packets} packets decoded, outcomes ${JSON.stringify(decoderCounts.errors)}`);
if (mode !== 'decoder') console.log(`broker: ${brokerCounts.inputs} hostile inputs, ${brokerCounts.slowloris} slowloris, ${brokerCounts.floods} SUBSCRIBE floods, ${brokerCounts.claims} 256 MB claims; sockets ${JSON.stringify(brokerCounts.outcomes)}`);
console.log(failures.length === 0 ? `OK: no failure in ${((Date.now() - started) / 1000).toFixed(0)} s (seed ${seed})` : `${failures.length} failure(s) (seed ${seed}); first: ${failures[0]}`);
process.exit(failures.length === 0 ? 0 : 1);
