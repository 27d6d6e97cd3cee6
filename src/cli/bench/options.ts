/** `starling bench` flags → BenchConfig, and the loopback-only guard. */
import { lookup } from 'node:dns/promises';
import { availableParallelism } from 'node:os';
import type { ProtocolVersion, QoS } from '../../client/index.js';
import { parseFlags, parseInteger, parseQos, parseVersion } from '../client-args.js';
import { UsageError } from '../exit-codes.js';

/** The four scenarios. */
export type BenchMode = 'conn' | 'pub' | 'sub' | 'pubsub';

/** Everything a bench run needs; plain data so it can be posted to workers. */
export interface BenchConfig {
  mode: BenchMode;
  host: string;
  port: number;
  version: ProtocolVersion;
  username: string | undefined;
  password: string | undefined;
  keepalive: number;
  /** Publishers (pub, pubsub), subscribers (sub) or connections (conn). */
  clients: number;
  /** Subscribers in pubsub mode. */
  subscribers: number;
  qos: QoS;
  /** Payload bytes. */
  size: number;
  /** Messages per second over all publishers (conn: connections per second); 0 = flat out. */
  rate: number;
  /** Seconds of publishing (conn: of holding the connections); undefined with --count only. */
  duration: number | undefined;
  /** Messages to publish over all publishers (sub: to receive). */
  count: number | undefined;
  /** Topic pattern; %i is the client's index. */
  topic: string;
  /** What subscribers subscribe to (%i allowed). */
  subTopic: string;
  /** QoS 1/2 messages in flight per publisher. */
  window: number;
  /** pubsub: messages a publisher may be ahead of each subscriber's receipt; 0 = open loop. */
  e2eWindow: number;
  workers: number;
  /** Seconds to wait for acks and messages after publishing stops. */
  drain: number;
  clientIdPrefix: string;
  allowRemote: boolean;
  json: boolean;
  quiet: boolean;
}

const BENCH_FLAGS = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  'protocol-version': { type: 'string', short: 'V' },
  username: { type: 'string', short: 'u' },
  pw: { type: 'string', short: 'P' },
  keepalive: { type: 'string', short: 'k' },
  clients: { type: 'string', short: 'c' },
  subscribers: { type: 'string', short: 'S' },
  qos: { type: 'string', short: 'q' },
  size: { type: 'string', short: 's' },
  rate: { type: 'string', short: 'r' },
  duration: { type: 'string', short: 'd' },
  count: { type: 'string', short: 'n' },
  topic: { type: 'string', short: 't' },
  'sub-topic': { type: 'string' },
  window: { type: 'string', short: 'w' },
  'e2e-window': { type: 'string', short: 'e' },
  workers: { type: 'string' },
  drain: { type: 'string' },
  'id-prefix': { type: 'string', short: 'I' },
  'allow-remote': { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/** Help text of `starling bench`. */
export const BENCH_USAGE = `Usage: starling bench conn|pub|sub|pubsub [options]

  conn     open -c connections (at --rate per second), hold them for --duration
  pub      -c publishers to --topic (%i = publisher index)
  sub      -c subscribers to --sub-topic; counts what arrives (latency if the payload has a bench timestamp)
  pubsub   -c publishers and -S subscribers; end-to-end latency from a timestamp in each payload

Options:
  -h, --host HOST          broker (default 127.0.0.1; loopback only unless --allow-remote)
  -p, --port PORT          default 1883
  -V, --protocol-version   5 | 311 | 31 (default 311)       -u USER  -P PASSWORD  -k KEEPALIVE
  -c, --clients N          publishers / subscribers / connections (default 1)
  -S, --subscribers N      subscribers in pubsub mode (default 1)
  -q, --qos 0|1|2          default 0
  -s, --size BYTES         payload size (default 64; pubsub needs >= 16)
  -r, --rate N             messages/s over all publishers (conn: connections/s); 0 = flat out (default)
  -d, --duration SEC       how long to publish (default 10 when --count is not given)
  -n, --count N            messages to publish over all publishers (sub: to receive)
  -t, --topic PATTERN      default bench/%i
      --sub-topic FILTER   default: --topic with %i replaced by +
  -w, --window N           QoS 1/2 messages in flight per publisher (default 64)
  -e, --e2e-window N       pubsub: a publisher stays at most N messages ahead of what the subscribers
                           got (closed loop: no QoS 0 drops); 0 = open loop. Default 8192/(pubs*subs),
                           clamped to 16..1024
      --workers N          worker threads (default min(2, cores))
      --drain SEC          wait for acks / messages after publishing (default 5)
  -I, --id-prefix PREFIX   client id prefix (default bench-<pid>-)
      --allow-remote       allow a non-loopback target
      --json               summary as one JSON object on stdout
      --quiet              no progress line on stderr
Exit codes: 0 done without errors, 1 usage error, 6 done with errors (see the summary).
`;

/** Parses the flags (mode is the first argument). */
export function parseBenchArgs(argv: string[]): BenchConfig | 'help' {
  const [mode, ...rest] = argv;
  if (mode === '--help' || mode === undefined) return 'help';
  if (mode !== 'conn' && mode !== 'pub' && mode !== 'sub' && mode !== 'pubsub') throw new UsageError(`unknown bench mode "${mode}" (conn, pub, sub, pubsub)`);
  const { values: v } = parseFlags(rest, BENCH_FLAGS);
  if (v.help === true) return 'help';
  const topic = v.topic ?? 'bench/%i';
  const count = v.count === undefined ? undefined : parseInteger(v.count, '--count', 1, 1e12);
  const size = v.size === undefined ? 64 : parseInteger(v.size, '--size', 0, 256 * 1024 * 1024);
  if (mode === 'pubsub' && size < 16) throw new UsageError('pubsub needs --size >= 16 (the payload carries a timestamp)');
  const config: BenchConfig = {
    mode,
    host: v.host ?? '127.0.0.1',
    port: v.port === undefined ? 1883 : parseInteger(v.port, '--port', 1, 65_535),
    version: parseVersion(v['protocol-version']),
    username: v.username,
    password: v.pw,
    keepalive: v.keepalive === undefined ? 60 : parseInteger(v.keepalive, '--keepalive', 0, 65_535),
    clients: v.clients === undefined ? 1 : parseInteger(v.clients, '--clients', 1, 1_000_000),
    subscribers: mode === 'pubsub' ? (v.subscribers === undefined ? 1 : parseInteger(v.subscribers, '--subscribers', 1, 1_000_000)) : 0,
    qos: parseQos(v.qos, '--qos'),
    size,
    rate: v.rate === undefined ? 0 : parseInteger(v.rate, '--rate', 0, 1e9),
    duration: v.duration === undefined ? (count === undefined ? 10 : undefined) : parseInteger(v.duration, '--duration', 1, 86_400),
    count,
    topic,
    subTopic: v['sub-topic'] ?? topic.replaceAll('%i', '+'),
    window: v.window === undefined ? 64 : parseInteger(v.window, '--window', 1, 65_535),
    e2eWindow: 0,
    workers: v.workers === undefined ? Math.min(2, availableParallelism()) : parseInteger(v.workers, '--workers', 1, 256),
    drain: v.drain === undefined ? 5 : parseInteger(v.drain, '--drain', 0, 3600),
    clientIdPrefix: v['id-prefix'] ?? `bench-${process.pid}-`,
    allowRemote: v['allow-remote'] === true,
    json: v.json === true,
    quiet: v.quiet === true,
  };
  const auto = Math.max(16, Math.min(1024, Math.floor(8192 / Math.max(1, config.clients * config.subscribers))));
  config.e2eWindow = v['e2e-window'] === undefined ? auto : parseInteger(v['e2e-window'], '--e2e-window', 0, 1e9);
  if (mode !== 'conn' && mode !== 'sub' && config.duration === undefined && count === undefined) throw new UsageError('give --duration or --count');
  return config;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Throws unless every address `host` resolves to is a loopback address. */
export async function assertLoopback(host: string): Promise<void> {
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(host, { all: true });
  } catch (error) {
    throw new UsageError(`cannot resolve ${host}: ${(error as Error).message}`);
  }
  const remote = addresses.filter((a) => !isLoopback(a.address));
  if (addresses.length === 0 || remote.length > 0) {
    throw new UsageError(`refusing to load ${host} (${remote.map((a) => a.address).join(', ')}): not a loopback address; pass --allow-remote if you mean it`);
  }
}
