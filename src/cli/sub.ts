/** `starling sub`: subscribe and print messages (mosquitto_sub flags, plus --json). */
import { connect, type Message, type MqttClient } from '../client/index.js';
import { CONNECTION_FLAGS, CONNECTION_USAGE, connectOptions, extractProperties, parseFlags, parseInteger, parseQos } from './client-args.js';
import { ExitCode, UsageError } from './exit-codes.js';
import { formatMessage, messageToJson } from './format.js';

const SUB_FLAGS = {
  ...CONNECTION_FLAGS,
  topic: { type: 'string', short: 't', multiple: true },
  count: { type: 'string', short: 'C' },
  verbose: { type: 'boolean', short: 'v' },
  format: { type: 'string', short: 'F' },
  'no-retained': { type: 'boolean', short: 'R' },
  'no-eol': { type: 'boolean', short: 'N' },
  json: { type: 'boolean' },
} as const;

/** Help text of `starling sub`. */
export const SUB_USAGE = `Usage: starling sub -t FILTER [-t FILTER …] [options]

Output:
  -t, --topic FILTER       topic filter to subscribe to (repeatable, required)
  -C, --count N            exit after N messages (exit code 0)
  -v, --verbose            print "topic payload"
  -F, --format FORMAT      %t topic %p payload %q QoS %r retain %l length %I ISO time %U Unix time
                           %x hex payload %j JSON %C content type %R response topic %P user properties
                           %c client id %% percent; escapes \\n \\t \\e \\\\
  -R, --no-retained        do not print (or count) retained messages
  -N, --no-eol             no newline after each message
      --json               one JSON object per line: topic, payload (text, or base64 with
                           "encoding":"base64"), qos, retain, properties
${CONNECTION_USAGE}
With -W the command stops after SEC seconds with exit code 3 (messages received until then are printed).
Exit codes: 0 ok, 1 usage/other error, 2 connection refused, 3 timeout, 4 network error, 5 rejected.
`;

function render(m: Message, v: { verbose?: boolean; format?: string; json?: boolean; 'no-eol'?: boolean }, clientId: string): Buffer {
  const eol = v['no-eol'] === true ? '' : '\n';
  if (v.json === true) return Buffer.from(messageToJson(m) + eol);
  if (v.format !== undefined) return Buffer.concat([formatMessage(v.format, m, clientId), Buffer.from(eol)]);
  if (v.verbose === true) return Buffer.concat([Buffer.from(`${m.topic} `), m.payload, Buffer.from(eol)]);
  return Buffer.concat([m.payload, Buffer.from(eol)]);
}

function write(bytes: Buffer): Promise<void> | undefined {
  if (process.stdout.write(bytes)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

/** Runs `starling sub`; resolves with the exit code. */
export async function runSub(argv: string[]): Promise<number> {
  const { rest, properties } = extractProperties(argv);
  const { values: v } = parseFlags(rest, SUB_FLAGS);
  if (v.help === true) {
    process.stdout.write(SUB_USAGE);
    return 0;
  }
  const topics = v.topic ?? [];
  if (topics.length === 0) throw new UsageError('at least one topic filter is required (-t FILTER)');
  if (v.json === true && (v.format !== undefined || v.verbose === true)) throw new UsageError('--json cannot be combined with -F or -v');
  const count = v.count === undefined ? undefined : parseInteger(v.count, '--count', 1, 2 ** 31);
  const timeoutMs = v.timeout === undefined ? undefined : parseInteger(v.timeout, '--timeout', 1, 2_000_000) * 1000;
  const qos = parseQos(v.qos, '--qos');
  const options = connectOptions(v, properties);
  options.reconnect = true;
  const quiet = v.quiet === true;

  const client: MqttClient = await connect(options);
  client.on('error', (error) => {
    if (!quiet) process.stderr.write(`starling sub: ${error.message}\n`);
  });
  client.on('reconnecting', (attempt, delay) => {
    if (!quiet && attempt === 1) process.stderr.write(`starling sub: connection lost, reconnecting (next try in ${delay} ms)\n`);
  });
  let outcome = ExitCode.ok as number;
  let timer: NodeJS.Timeout | undefined;
  const stop = (code: number): void => {
    outcome = code;
    subscription?.close();
  };
  const subscribeOptions = properties.subscribe === undefined ? { qos } : { qos, properties: properties.subscribe };
  const subscription = await client.subscribe(topics, subscribeOptions);
  if (!subscription.ok) {
    const refused = subscription.filters.filter((_f, i) => (subscription.reasonCodes[i] ?? 0x80) >= 0x80);
    await client.end();
    if (!quiet) process.stderr.write(`starling sub: subscription refused by the server for ${refused.map((f) => `"${f}"`).join(', ')}\n`);
    return ExitCode.rejected;
  }
  if (timeoutMs !== undefined) timer = setTimeout(() => stop(ExitCode.timeout), timeoutMs);
  const onSignal = (): void => stop(ExitCode.ok);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  client.once('close', (error) => {
    if (error !== undefined) outcome = ExitCode.network;
  });
  let received = 0;
  try {
    for await (const m of subscription) {
      if (v['no-retained'] === true && m.retain) continue;
      const pending = write(render(m, v, client.clientId));
      if (pending !== undefined) await pending;
      if (count !== undefined && ++received >= count) break;
    }
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  await client.end(properties.disconnect === undefined ? {} : { properties: properties.disconnect });
  return outcome;
}
