/**
 * The outside view of a fault test: publishers of numbered QoS 1 / QoS 2 messages that record which
 * ones their broker acknowledged (PUBACK / PUBCOMP), persistent subscribers (MQTT.js, and
 * mosquitto_sub as an independent client) that count every delivery, and the verdict: every
 * acknowledged message delivered to every persistent subscriber, no QoS 2 message delivered twice.
 */
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { join } from 'node:path';
import type { Lab, LabProcess } from './lab.js';

/** Every MQTT.js client and publisher made here, ended by `endAll()`. */
const clients = new Set<MqttClient>();
const publishers = new Set<Publisher>();

/** Stops every publisher and ends every client this module made (at once, no DISCONNECT). */
export function endAll(): void {
  for (const publisher of publishers) void publisher.stop(0);
  publishers.clear();
  for (const client of clients) client.end(true);
  clients.clear();
}

/**
 * An MQTT.js client on the given loopback ports (tried in turn on each reconnect, like a client
 * behind a list of broker addresses), reconnecting every `reconnectMs`. Errors are kept, not thrown.
 */
export function client(ports: readonly number[], options: IClientOptions): MqttClient {
  const made = mqtt.connect({
    servers: ports.map((port) => ({ host: '127.0.0.1', port })),
    protocolVersion: 4,
    reconnectPeriod: 300,
    connectTimeout: 3000,
    keepalive: 2,
    // A CONNACK refusal (Server unavailable while a node is cut off) is retried, as real clients do.
    reconnectOnConnackError: true,
    ...options,
  });
  made.on('error', () => undefined);
  clients.add(made);
  return made;
}

/** Resolves at the client's next CONNACK (at once if connected), or rejects after `timeoutMs`. */
export function connected(c: MqttClient, timeoutMs = 10_000): Promise<void> {
  if (c.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off('connect', onConnect);
      reject(new Error(`client ${c.options.clientId ?? '?'} not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnect = (): void => {
      clearTimeout(timer);
      resolve();
    };
    c.once('connect', onConnect);
  });
}

/** A publisher of numbered messages on one topic, `window` unacknowledged at most, one every `paceMs`. */
export class Publisher {
  /** Message number → when its acknowledgement (PUBACK, or PUBCOMP for QoS 2) arrived. */
  readonly acked = new Map<number, number>();
  /** Message number → when it was first sent. */
  readonly sentAt = new Map<number, number>();
  /** When the client's connection closed (each time). */
  readonly closes: number[] = [];
  sent = 0;
  /** Set by a test for a publisher on a node it cuts off (see Verdict.duplicatedResent). */
  cutOff = false;
  private inflight = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: MqttClient,
    readonly topic: string,
    readonly qos: 1 | 2,
    options: { paceMs?: number; window?: number } = {},
  ) {
    const window = options.window ?? 16;
    publishers.add(this);
    client.on('close', () => this.closes.push(Date.now()));
    this.timer = setInterval(() => {
      // Only while connected: MQTT.js resends what is in flight after a reconnect.
      if (this.inflight >= window || !client.connected) return;
      const n = ++this.sent;
      this.sentAt.set(n, Date.now());
      this.inflight++;
      client.publish(topic, String(n), { qos }, (error) => {
        this.inflight--;
        if (error === undefined || error === null) this.acked.set(n, Date.now());
      });
    }, options.paceMs ?? 10);
  }

  /** Key of message `n` as subscribers record it. */
  key(n: number): string {
    return `${this.topic} ${n}`;
  }

  /**
   * True when message `n` was still unacknowledged when the connection closed (MQTT.js sent it
   * again after reconnecting).
   */
  resent(n: number): boolean {
    const sent = this.sentAt.get(n);
    if (sent === undefined) return false;
    const acked = this.acked.get(n) ?? Infinity;
    return this.closes.some((at) => at >= sent && at <= acked);
  }

  /** The longest time without an acknowledgement within [from, to] (ms). */
  longestAckGap(from: number, to: number): number {
    const times = [from, ...[...this.acked.values()].filter((t) => t > from && t < to).sort((a, b) => a - b), to];
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    return gap;
  }

  /** Acknowledged within [from, to]. */
  ackedBetween(from: number, to: number): number {
    let count = 0;
    for (const at of this.acked.values()) if (at >= from && at <= to) count++;
    return count;
  }

  /** Acknowledged since `time`. */
  ackedSince(time: number): number {
    let count = 0;
    for (const at of this.acked.values()) if (at >= time) count++;
    return count;
  }

  /** Stops publishing; waits (at most `timeoutMs`) for what is in flight to be acknowledged or failed. */
  async stop(timeoutMs = 10_000): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.inflight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What a subscriber received: delivery count and QoS per "topic payload". */
export interface Deliveries {
  readonly name: string;
  count(key: string): number;
  /** Deliveries in all. */
  total(): number;
  /**
   * Set for a client library known to deliver a QoS 2 message twice on its own (what it is): its
   * duplicates are counted apart, not as the broker's. Messages it lost still count as lost.
   */
  readonly qos2DuplicateBug?: string | undefined;
}

/** A persistent MQTT.js subscriber (CleanSession 0) that counts every message. */
export class Subscriber implements Deliveries {
  readonly counts = new Map<string, number>();
  readonly client: MqttClient;
  /** Every CONNACK: when, on which loopback port, with Session Present. */
  readonly connects: { at: number; port: number; sessionPresent: boolean }[] = [];
  private deliveries = 0;

  constructor(readonly name: string, ports: readonly number[], filter: string, options: IClientOptions = {}) {
    // No resubscribing after a reconnect: the session keeps the subscription, and resubscribing would hide a lost one.
    this.client = client(ports, { clientId: name, clean: false, resubscribe: false, ...options });
    this.client.on('connect', (connack: IConnackPacket) => {
      this.connects.push({ at: Date.now(), port: Number(this.client.options.port), sessionPresent: connack.sessionPresent });
    });
    this.client.on('message', (topic: string, payload: Buffer, _packet: IPublishPacket) => {
      const key = `${topic} ${payload.toString()}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      this.deliveries++;
    });
    this.subscribed = connected(this.client).then(() => this.client.subscribeAsync(filter, { qos: 2 })).then(() => undefined);
  }

  /** Resolves once the first SUBACK arrived. */
  readonly subscribed: Promise<void>;

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  total(): number {
    return this.deliveries;
  }
}

/**
 * A subscriber that is another program, run inside the clients' namespace, printing one line
 * "M <qos> <topic> <payload>" per message: mosquitto_sub (libmosquitto) or Paho (Python), both with
 * a persistent session. Such a program reconnects by itself after a lost connection, but
 * mosquitto_sub exits when a CONNACK refuses it (a node cut off from Redis answers Server
 * unavailable): it is started again then, as a supervisor would, and what every run printed counts.
 */
export class ProcessSubscriber implements Deliveries {
  private readonly runs: { proc: LabProcess; parsedUpTo: number }[] = [];
  private readonly counts = new Map<string, number>();
  private deliveries = 0;
  private closed = false;

  qos2DuplicateBug: string | undefined;

  constructor(readonly name: string, private readonly lab: Lab, private readonly command: string, private readonly args: readonly string[]) {
    this.start();
  }

  /** mosquitto_sub on `host`'s port 1883: -c (CleanSession 0), -q 2, -k 5 (its shortest keep-alive). */
  static mosquitto(name: string, lab: Lab, host: string, filter: string): ProcessSubscriber {
    const subscriber = new ProcessSubscriber(name, lab, '/usr/bin/mosquitto_sub', ['-h', lab.address(host), '-p', '1883', '-i', name, '-c', '-q', '2', '-k', '5', '-t', filter, '-F', 'M %q %t %p']);
    // libmosquitto queues a QoS 2 PUBLISH resent with DUP=1 (as [MQTT-4.4.0-1] requires after a
    // reconnection when PUBREC was lost) a second time under the same packet id, and delivers both:
    // eclipse-mosquitto/mosquitto#1450 and #1751, open. MQTT.js and Paho, given the same resends, hold the line.
    subscriber.qos2DuplicateBug = 'libmosquitto delivers a resent QoS 2 PUBLISH twice (eclipse-mosquitto/mosquitto#1450)';
    return subscriber;
  }

  /** Paho (Python, ./paho_sub.py) on `host`'s port 1883, persistent, QoS 2, keep-alive `keepalive` s. */
  static paho(name: string, lab: Lab, host: string, filter: string, keepalive: number): ProcessSubscriber {
    return new ProcessSubscriber(name, lab, '/usr/bin/python3', [join(import.meta.dirname, 'paho_sub.py'), lab.address(host), '1883', name, filter, String(keepalive)]);
  }

  /** Lines the program printed that are not messages (Paho's CONNACK lines, errors). */
  notes(): string[] {
    return this.runs.flatMap((run) => run.proc.output().split('\n').filter((line) => line !== '' && !line.startsWith('M ')));
  }

  private start(): void {
    const proc = this.lab.spawn('clients', this.command, this.args);
    this.runs.push({ proc, parsedUpTo: 0 });
    void proc.exited.then(() => {
      if (!this.closed) setTimeout(() => !this.closed && this.start(), 500);
    });
  }

  /** How many times the program was started. */
  get starts(): number {
    return this.runs.length;
  }

  /** Stops it (by PID) and does not start it again. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.runs.map((run) => run.proc.kill('SIGKILL')));
  }

  /** Counts the lines printed since the last call. */
  private parse(): void {
    for (const run of this.runs) {
      const text = run.proc.output();
      const end = text.lastIndexOf('\n') + 1;
      if (end <= run.parsedUpTo) continue;
      for (const line of text.slice(run.parsedUpTo, end).split('\n')) {
        const match = /^M \d (\S+) (.*)$/.exec(line);
        if (match === null) continue;
        const key = `${match[1]} ${match[2]}`;
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
        this.deliveries++;
      }
      run.parsedUpTo = end;
    }
  }

  count(key: string): number {
    this.parse();
    return this.counts.get(key) ?? 0;
  }

  total(): number {
    this.parse();
    return this.deliveries;
  }
}

/** What `verify` found. */
export interface Verdict {
  /** Acknowledged in all. */
  acked: number;
  /** "subscriber: topic n" of acknowledged messages a subscriber did not get. */
  lost: string[];
  /** "subscriber: topic n ×count" of QoS 2 messages delivered more than once. */
  duplicatedQos2: string[];
  /**
   * The same, for messages of a publisher marked `cutOff` that its client sent again after its
   * connection closed: the documented limit (docs/clustering.md, "Partitions"), counted apart.
   */
  duplicatedResent: string[];
  /** The same, delivered by a client library with a known bug of its own (`Deliveries.qos2DuplicateBug`), counted apart. */
  duplicatedByClient: string[];
  /** Deliveries per subscriber. */
  delivered: Record<string, number>;
}

/** Checks every acknowledged message against what each subscriber received. */
export function verify(publishers: readonly Publisher[], subscribers: readonly Deliveries[]): Verdict {
  const verdict: Verdict = { acked: 0, lost: [], duplicatedQos2: [], duplicatedResent: [], duplicatedByClient: [], delivered: {} };
  for (const p of publishers) verdict.acked += p.acked.size;
  for (const s of subscribers) {
    verdict.delivered[s.name] = s.total();
    for (const p of publishers) {
      for (const n of p.acked.keys()) if (s.count(p.key(n)) === 0) verdict.lost.push(`${s.name}: ${p.key(n)}`);
      if (p.qos !== 2) continue;
      for (let n = 1; n <= p.sent; n++) {
        const count = s.count(p.key(n));
        if (count <= 1) continue;
        if (p.cutOff && p.resent(n)) verdict.duplicatedResent.push(`${s.name}: ${p.key(n)} ×${count}`);
        else if (s.qos2DuplicateBug !== undefined) verdict.duplicatedByClient.push(`${s.name}: ${p.key(n)} ×${count} (${s.qos2DuplicateBug})`);
        else verdict.duplicatedQos2.push(`${s.name}: ${p.key(n)} ×${count}`);
      }
    }
  }
  return verdict;
}

/**
 * Publishes a probe on `topic` from `publisher` every 100 ms until every subscriber has one (their
 * subscriptions are known to the publisher's node), or throws after `timeoutMs`.
 */
export async function untilReceived(publisher: MqttClient, topic: string, subscribers: readonly Deliveries[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  const has = (s: Deliveries): boolean => Array.from({ length: n }, (_, i) => s.count(`${topic} p${i + 1}`)).some((c) => c > 0);
  while (!subscribers.every(has)) {
    if (Date.now() > deadline) throw new Error(`probe on ${topic} reached ${subscribers.filter(has).map((s) => s.name).join(', ') || 'no subscriber'} of ${subscribers.map((s) => s.name).join(', ')} within ${timeoutMs} ms`);
    if (publisher.connected) publisher.publish(topic, `p${++n}`, { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until nothing acknowledged is missing (or `timeoutMs`), then returns the verdict. */
export async function settle(publishers: readonly Publisher[], subscribers: readonly Deliveries[], timeoutMs: number): Promise<Verdict> {
  const deadline = Date.now() + timeoutMs;
  let verdict = verify(publishers, subscribers);
  while (verdict.lost.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    verdict = verify(publishers, subscribers);
  }
  // Room for a late duplicate to show.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return verify(publishers, subscribers);
}

/** A one-line summary of a verdict for diagnostics and assertion messages. */
export function describe(verdict: Verdict): string {
  const lost = verdict.lost.length === 0 ? 'none lost' : `${verdict.lost.length} lost (${verdict.lost.slice(0, 8).join('; ')}${verdict.lost.length > 8 ? '; …' : ''})`;
  const dup = verdict.duplicatedQos2.length === 0 ? 'no QoS 2 duplicate' : `${verdict.duplicatedQos2.length} QoS 2 duplicates (${verdict.duplicatedQos2.slice(0, 8).join('; ')})`;
  const resent = verdict.duplicatedResent.length === 0 ? '' : `; ${verdict.duplicatedResent.length} QoS 2 duplicates of messages resent by a cut-off publisher (${verdict.duplicatedResent.slice(0, 4).join('; ')})`;
  const byClient = verdict.duplicatedByClient.length === 0 ? '' : `; ${verdict.duplicatedByClient.length} QoS 2 duplicates by a client library's own bug (${verdict.duplicatedByClient.slice(0, 4).join('; ')})`;
  return `${verdict.acked} acknowledged; ${lost}; ${dup}${resent}${byClient}; delivered ${JSON.stringify(verdict.delivered)}`;
}
