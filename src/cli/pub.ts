/** `starling pub`: publish one message, a file, stdin, or one message per stdin line (mosquitto_pub flags). */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { TimeoutError, connect, type MqttClient, type PublishOptions } from '../client/index.js';
import { CONNECTION_FLAGS, CONNECTION_USAGE, connectOptions, extractProperties, parseFlags, parseInteger, parseQos } from './client-args.js';
import { UsageError } from './exit-codes.js';

const PUB_FLAGS = {
  ...CONNECTION_FLAGS,
  topic: { type: 'string', short: 't' },
  message: { type: 'string', short: 'm' },
  file: { type: 'string', short: 'f' },
  'stdin-line': { type: 'boolean', short: 'l' },
  'stdin-file': { type: 'boolean', short: 's' },
  'null-message': { type: 'boolean', short: 'n' },
  retain: { type: 'boolean', short: 'r' },
  repeat: { type: 'string' },
} as const;

/** Help text of `starling pub`. */
export const PUB_USAGE = `Usage: starling pub -t TOPIC (-m MESSAGE | -f FILE | -l | -s | -n) [options]

Message:
  -t, --topic TOPIC        topic to publish to (required)
  -m, --message TEXT       the payload
  -f, --file FILE          the payload is the file's content
  -l, --stdin-line         one message per line of standard input
  -s, --stdin-file         the payload is all of standard input
  -n, --null-message       an empty payload
  -r, --retain             retain the message
      --repeat N           publish the message N times
${CONNECTION_USAGE}
Exit codes: 0 ok, 1 usage/other error, 2 connection refused, 3 timeout, 4 network error, 5 rejected.
`;

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function publishLines(client: MqttClient, topic: string, options: PublishOptions): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const pending: Array<Promise<unknown>> = [];
  for await (const line of lines) {
    pending.push(client.publish(topic, line, options));
    if (pending.length >= 64) await pending.shift();
  }
  await Promise.all(pending);
}

/** Runs `starling pub`; resolves with the exit code (errors are thrown and mapped by the caller). */
export async function runPub(argv: string[]): Promise<number> {
  const { rest, properties } = extractProperties(argv);
  const { values: v } = parseFlags(rest, PUB_FLAGS);
  if (v.help === true) {
    process.stdout.write(PUB_USAGE);
    return 0;
  }
  if (v.topic === undefined) throw new UsageError('a topic is required (-t TOPIC)');
  const sources = [v.message !== undefined, v.file !== undefined, v['stdin-line'] === true, v['stdin-file'] === true, v['null-message'] === true].filter(Boolean).length;
  if (sources !== 1) throw new UsageError('give exactly one of -m MESSAGE, -f FILE, -l, -s or -n');
  const options = connectOptions(v, properties);
  const publishOptions: PublishOptions = { qos: parseQos(v.qos, '--qos'), retain: v.retain === true };
  if (properties.publish !== undefined) publishOptions.properties = properties.publish;
  const repeat = v.repeat === undefined ? 1 : parseInteger(v.repeat, '--repeat', 1, 1e9);
  let payload: Buffer | undefined;
  if (v.message !== undefined) payload = Buffer.from(v.message);
  else if (v['null-message'] === true) payload = Buffer.alloc(0);
  else if (v.file !== undefined) {
    try {
      payload = readFileSync(v.file);
    } catch (error) {
      throw new UsageError(`cannot read ${v.file}: ${(error as Error).message}`);
    }
  }

  const timeoutMs = v.timeout === undefined ? undefined : parseInteger(v.timeout, '--timeout', 1, 2_000_000) * 1000;
  const held: { client?: MqttClient } = {};
  let timer: NodeJS.Timeout | undefined;
  const work = async (): Promise<void> => {
    const client = await connect(options);
    held.client = client;
    if (v['stdin-line'] === true) {
      await publishLines(client, v.topic!, publishOptions);
    } else {
      const body = payload ?? (await readStdin());
      for (let i = 0; i < repeat; i++) await client.publish(v.topic!, body, publishOptions);
    }
    const disconnect = properties.disconnect === undefined ? {} : { properties: properties.disconnect };
    await client.end(disconnect);
  };
  const deadline = new Promise<never>((_resolve, reject) => {
    if (timeoutMs !== undefined) timer = setTimeout(() => reject(new TimeoutError(`not done within ${timeoutMs / 1000} s (-W)`)), timeoutMs);
  });
  try {
    await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(timer);
    held.client?.destroy();
  }
  return 0;
}
