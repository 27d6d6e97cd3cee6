/**
 * Worker mode of the integration tests: with STARLING_TEST_WORKERS=N, `startTestBroker` and the MQTT 5
 * files' `startBroker` start a real `starling --workers N` (a child process, temporary data directory,
 * ports from its log) instead of an in-process broker, so the same tests check that clients landing on
 * different workers (the primary's round-robin) see one broker. `server.broker.publish` goes through an
 * MQTT client of its own (on some worker); everything else of the in-process broker is unavailable, and
 * the tests that need it are skipped in this mode with their reason (`inProcessOnly`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Broker } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { PublishInput } from '../../src/model/message.js';
import { isValidTopicName } from '../../src/protocol/topic.js';
import type { PublishPacket } from '../../src/protocol/types.js';
import { trackPublish } from './publish-barrier.js';
import { RawClient } from './raw-client.js';
import { tempDir } from './temp-dir.js';
import { startGroup, type Group } from './worker-group.js';

/** Workers of the group each test broker is, from STARLING_TEST_WORKERS (undefined: in-process brokers). */
export const TEST_WORKERS: number | undefined = ((): number | undefined => {
  const value = process.env['STARLING_TEST_WORKERS'];
  if (value === undefined || value === '' || value === '1') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new Error(`STARLING_TEST_WORKERS must be a whole number of workers ≥ 2, not "${value}"`);
  return n;
})();

/** True when the test brokers are worker groups. */
export const workerMode = TEST_WORKERS !== undefined;

/**
 * Options of a test that needs the in-process broker (its internals, plugins, hooks, a store object):
 * skipped in worker mode, with the reason in the report ("# SKIP needs the in-process broker: …").
 */
export function inProcessOnly(reason: string): { skip: string | false } {
  return { skip: workerMode ? `needs the in-process broker: ${reason}` : false };
}

/**
 * Options of a test that checks what a worker group does differently, as docs/workers.md says
 * ("Limits and what is not guaranteed"): skipped in worker mode with that reason, never silently.
 */
export function notInWorkers(reason: string): { skip: string | false } {
  return { skip: workerMode ? `differs in a worker group (docs/workers.md): ${reason}` : false };
}

/** Settings a group takes from its config file (a subset of the broker's options, by config section). */
export interface GroupSettings {
  limits?: Record<string, unknown>;
  features?: Record<string, unknown>;
}

/** A worker group as the integration tests see a broker. */
export interface GroupBroker {
  readonly port: number;
  readonly httpPort: number;
  readonly group: Group;
  /** In-process look-alike: `publish` through an MQTT client; anything else throws, naming what the test needs. */
  readonly broker: Broker;
  close(): Promise<void>;
}

const FEATURE_KEYS = new Set(['retainAvailable', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable', 'sharedSubscriptionStrategy', 'validateUtf8Payload', 'responseInformation']);

/** Splits flat broker-core options (BrokerInit) into the config file's `limits` and `features`. */
export function settingsOf(options: Partial<BrokerOptions>): GroupSettings {
  const limits: Record<string, unknown> = {};
  const features: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (typeof value === 'function') throw new Error(`a worker group cannot take the in-process option "${key}" (a function): mark the test inProcessOnly`);
    (FEATURE_KEYS.has(key) ? features : limits)[key] = value;
  }
  return { limits, features };
}

/** Starts `starling --workers N` with `settings` in a config file; resolves once every worker serves. */
export async function startGroupBroker(settings: GroupSettings = {}): Promise<GroupBroker> {
  const dir = tempDir('starling-test-group-');
  const configFile = join(dir, 'starling.json');
  // No $SYS topics: an embedded broker (the in-process test brokers) publishes none either.
  writeFileSync(configFile, JSON.stringify({ limits: settings.limits ?? {}, features: settings.features ?? {}, sys: { interval: 0, events: false } }));
  const group = await startGroup({ workers: TEST_WORKERS ?? 3, dataDir: join(dir, 'data'), args: ['--config', configFile] });
  const publisher = new GroupPublisher(group.port);
  return {
    port: group.port,
    httpPort: group.httpPort,
    group,
    broker: inProcessLookAlike(publisher),
    async close() {
      publisher.close();
      const code = await group.stop();
      if (code !== 0) throw new Error(`the worker group exited with code ${String(code)}:\n${group.lines.slice(-20).join('\n')}`);
    },
  };
}

/** A placeholder for a broker a worker group cannot be (in-process options): using it throws; close() does nothing. */
export function unavailableBroker(reason: string): GroupBroker {
  const fail = (): never => {
    throw new Error(`needs the in-process broker (${reason}): mark the test inProcessOnly`);
  };
  return {
    get port() {
      return fail();
    },
    get httpPort() {
      return fail();
    },
    get group() {
      return fail();
    },
    get broker() {
      return fail();
    },
    close: () => Promise.resolve(),
  };
}

/**
 * `broker.publish` of a worker group: synchronous for the caller (a bad topic throws at once, as in
 * process), sent in order by one MQTT 5 client, each message acknowledged (PUBACK / PUBCOMP, a
 * PINGRESP or a QoS 1 PUBACK behind QoS 0) before the next goes, so a later publish never overtakes an earlier one, as
 * with the in-process broker; the test clients wait for them before they connect or subscribe
 * (publish-barrier.ts).
 */
class GroupPublisher {
  private client: Promise<RawClient> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private static count = 0;

  constructor(private readonly port: number) {}

  publish(input: PublishInput): void {
    if (!isValidTopicName(input.topic)) throw new Error(`invalid topic name "${input.topic}"`);
    this.client ??= RawClient.connected(this.port, { protocolVersion: 5, clientId: `test-publisher-${++GroupPublisher.count}-${process.pid}` });
    const client = this.client;
    const sent = this.chain.then(async () => {
      const raw = await client;
      if (this.closed) return;
      const qos = input.qos ?? 0;
      const payload = typeof input.payload === 'string' ? Buffer.from(input.payload) : (input.payload ?? Buffer.alloc(0));
      const packet: PublishPacket = { type: 'publish', topic: input.topic, payload, qos, retain: input.retain ?? false, dup: false };
      if (qos > 0) packet.packetId = raw.allocatePacketId();
      if (input.properties !== undefined) packet.properties = input.properties;
      raw.send(packet);
      // QoS 0 has no acknowledgement: a PINGRESP says the worker has handled the PUBLISH before it.
      // A retained QoS 0 message reaches the other workers' copies with that worker's next commit, which
      // nothing the publisher gets waits for (docs/workers.md). A retained QoS 1 message behind it (set,
      // then cleared; a $ topic no wildcard filter matches) is acknowledged only once that commit is.
      if (qos === 0 && packet.retain) {
        for (const payload of [Buffer.from('x'), Buffer.alloc(0)]) {
          raw.send({ type: 'publish', topic: '$starling-test/barrier', payload, qos: 1, retain: true, dup: false, packetId: raw.allocatePacketId() });
          await raw.expect('puback', 10_000);
        }
      } else if (qos === 0) {
        raw.send({ type: 'pingreq' });
        await raw.expect('pingresp', 10_000);
      }
      if (qos === 1) await raw.expect('puback', 10_000);
      if (qos === 2) {
        await raw.expect('pubrec', 10_000);
        raw.send({ type: 'pubrel', packetId: packet.packetId! });
        await raw.expect('pubcomp', 10_000);
      }
    });
    trackPublish(sent.catch(() => undefined));
    // A failed publish is reported and does not stop the ones after it (the test sees the message missing).
    this.chain = sent.catch((error: unknown) => {
      if (!this.closed) process.stderr.write(`worker-mode publisher: ${String(error)}\n`);
    });
  }

  close(): void {
    this.closed = true;
    void this.client?.then((raw) => raw.destroy(), () => undefined);
  }
}

/** A `Broker` whose `publish` goes through `publisher`; any other member throws (the test needs the in-process broker). */
function inProcessLookAlike(publisher: GroupPublisher): Broker {
  const target = { publish: (input: PublishInput): void => publisher.publish(input) };
  // A Proxy stands in for the whole Broker type: only `publish` exists in worker mode.
  return new Proxy(target, {
    get(object, key) {
      if (key === 'publish') return object.publish;
      if (key === 'then') return undefined;
      throw new Error(`broker.${String(key)} needs the in-process broker: mark the test inProcessOnly`);
    },
  }) as unknown as Broker;
}

/** The value of an unlabelled series of the group's /metrics (counters are the whole group's). */
export async function groupMetric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (match === null) throw new Error(`no series ${name} in /metrics`);
  return Number(match[1]);
}
