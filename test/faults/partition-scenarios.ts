/**
 * The cluster partition scenarios, shared by the bounded tests (test/faults/partitions-*.test.ts)
 * and the long run (bench/partitions.ts). Each one starts QoS 1/2 traffic between clients on
 * different nodes, makes one fault in the lab's router, heals it, and returns what it saw from
 * outside: the verdict of the ledger (acknowledged vs delivered), how the cut-off node answered
 * (/readyz, CONNACK to a new persistent session, acknowledgements) and how the healthy side was served.
 */
import mqtt from 'mqtt';
import { sleep } from '../helpers/cluster.js';
import type { ClusterLab, LabNode } from './cluster-lab.js';
import { ProcessSubscriber, Publisher, Subscriber, client, connected, settle, untilReceived, type Deliveries, type Verdict } from './ledger.js';

/** The traffic of one scenario. */
export interface Scene {
  readonly base: string;
  readonly publishers: Publisher[];
  readonly subscribers: Deliveries[];
  /** The MQTT.js subscriber that starts on the node under test and may move (servers: every node). */
  readonly mover: Subscriber;
  close(): Promise<void>;
}

/**
 * Persistent subscribers to `f{tag}/#`: MQTT.js on `home` (free to move to the others), MQTT.js on
 * `others[0]`, Paho (Python) on `others[1]`; QoS 1 from `others[0]`, QoS 2 from `home` (marked cut
 * off) and QoS 2 from `others[1]`, 100 messages/s each. Resolves once every subscriber receives.
 */
export async function startTraffic(cl: ClusterLab, tag: string, home: LabNode, others: readonly [LabNode, LabNode]): Promise<Scene> {
  const [a, b] = others;
  const base = `f${tag}/`;
  const mover = new Subscriber(`${tag}-sub-${home.nodeId}`, [home.mqttPort, a.mqttPort, b.mqttPort], `${base}#`);
  const fixed = new Subscriber(`${tag}-sub-${a.nodeId}`, [a.mqttPort], `${base}#`);
  // Paho, not mosquitto_sub: a node that lost its lease refuses persistent sessions for a while,
  // and mosquitto_sub exits on a refusal, dropping the half-done QoS 2 flows of its session (a
  // PUBREL that then arrives is for an id it no longer knows, and the message never reaches it).
  // Paho keeps its session state and retries.
  const paho = ProcessSubscriber.paho(`${tag}-paho-${b.nodeId}`, cl.lab, b.nodeId, `${base}#`, 2);
  await Promise.all([mover.subscribed, fixed.subscribed]);
  const probe = client([a.mqttPort], { clientId: `${tag}-probe` });
  await connected(probe);
  await untilReceived(probe, `${base}probe`, [mover, fixed, paho], 15_000);
  probe.end(true);
  const homePublisher = new Publisher(client([home.mqttPort], { clientId: `${tag}-pub-${home.nodeId}`, clean: false }), `${base}q2/${home.nodeId}`, 2);
  homePublisher.cutOff = true;
  const publishers = [
    new Publisher(client([a.mqttPort], { clientId: `${tag}-pub-${a.nodeId}`, clean: false }), `${base}q1/${a.nodeId}`, 1),
    homePublisher,
    new Publisher(client([b.mqttPort], { clientId: `${tag}-pub-${b.nodeId}`, clean: false }), `${base}q2/${b.nodeId}`, 2),
  ];
  await Promise.all(publishers.map((p) => connected(p.client)));
  return {
    base,
    publishers,
    subscribers: [mover, fixed, paho],
    mover,
    close: async () => {
      await Promise.all(publishers.map((p) => p.stop(0)));
      for (const c of [mover.client, fixed.client, ...publishers.map((p) => p.client)]) c.end(true);
      await paho.close();
    },
  };
}

/** Stops the publishers, waits for every acknowledged message to arrive (at most `timeoutMs`), returns the verdict. */
export async function finish(scene: Scene, timeoutMs = 20_000): Promise<Verdict> {
  await Promise.all(scene.publishers.map((p) => p.stop(10_000)));
  return settle(scene.publishers, scene.subscribers, timeoutMs);
}

/** /readyz of a node, polled every 250 ms in the background. */
export class ReadyWatch {
  readonly samples: { at: number; status: number | undefined }[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(readonly node: LabNode) {
    this.loop = (async () => {
      while (this.running) {
        this.samples.push({ at: Date.now(), status: await node.readyz() });
        await sleep(250);
      }
    })();
  }

  /** When /readyz first answered something else than 200 at or after `from` (undefined: never). */
  firstNotReady(from: number): number | undefined {
    return this.samples.find((s) => s.at >= from && s.status !== 200)?.at;
  }

  /** When /readyz first answered 200 at or after `from`. */
  firstReady(from: number): number | undefined {
    return this.samples.find((s) => s.at >= from && s.status === 200)?.at;
  }

  /** True when every sample within [from, to] was not 200 (and there was at least one). */
  notReadyThroughout(from: number, to: number): boolean {
    const within = this.samples.filter((s) => s.at >= from && s.at <= to);
    return within.length > 0 && within.every((s) => s.status !== 200);
  }

  /** True when every sample within [from, to] was 200. */
  readyThroughout(from: number, to: number): boolean {
    return this.samples.filter((s) => s.at >= from && s.at <= to).every((s) => s.status === 200);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** What a new connection with a persistent session got from a node. */
export interface ConnectOutcome {
  outcome: 'accepted' | 'refused' | 'no answer';
  /** CONNACK return code when refused. */
  returnCode?: number;
  ms: number;
}

/** Connects once (no retry) with CleanSession 0 and reports what came back within `timeoutMs`. */
export async function tryPersistentConnect(port: number, clientId: string, timeoutMs = 5000): Promise<ConnectOutcome> {
  const started = Date.now();
  const c = mqtt.connect({ host: '127.0.0.1', port, clientId, clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: timeoutMs });
  try {
    return await new Promise<ConnectOutcome>((resolve) => {
      c.once('connect', () => resolve({ outcome: 'accepted', ms: Date.now() - started }));
      c.on('error', (error: Error & { code?: number }) => {
        if (typeof error.code === 'number') resolve({ outcome: 'refused', returnCode: error.code, ms: Date.now() - started });
      });
      c.once('close', () => resolve({ outcome: 'no answer', ms: Date.now() - started }));
    });
  } finally {
    c.end(true);
  }
}

/** Waits until every node answers /readyz 200 (bounded). */
export async function allReady(nodes: readonly LabNode[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = await Promise.all(nodes.map((n) => n.readyz()));
    if (statuses.every((s) => s === 200)) return;
    if (Date.now() > deadline) throw new Error(`not every node ready within ${timeoutMs} ms: ${nodes.map((n, i) => `${n.nodeId} ${statuses[i] ?? 'no answer'}`).join(', ')}`);
    await sleep(200);
  }
}

/** The node that logged the adoption of `dead` since `since`. */
export function adoptedBy(nodes: readonly LabNode[], dead: string, since: number): string | undefined {
  return nodes.find((n) => logSince(n, since).some((line) => line.includes('dead node adopted') && line.includes(`"node":"${dead}"`)))?.nodeId;
}

/** When a log line was written: its "time" (an ISO date, or epoch milliseconds); 0 when it has none. */
export function logTime(line: string): number {
  const time = /"time":(?:"([^"]+)"|(\d+))/.exec(line);
  if (time === null) return 0;
  return time[1] !== undefined ? Date.parse(time[1]) || 0 : Number(time[2]);
}

/** The log lines of `node` written since `since`. */
export function logSince(node: LabNode, since: number): string[] {
  return node.output().split('\n').filter((line) => logTime(line) >= since);
}

/** For a failure message: the cluster's warnings and errors since `since`, and the mover's connections. */
export function evidence(nodes: readonly LabNode[], since: number, connects: readonly { at: number; port: number; sessionPresent: boolean }[]): string {
  const lines = nodes.flatMap((n) => logSince(n, since).filter((l) => /"level":("warn"|"error"|40|50)/.test(l) || l.includes('cluster') || l.includes('session')).map((l) => `${n.nodeId} +${logTime(l) - since} ${/"msg":"([^"]*)"/.exec(l)?.[1] ?? l}`));
  const ports = new Map(nodes.map((n) => [n.mqttPort, n.nodeId]));
  return `\n${lines.sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1])).join('\n')}\nmover: ${connects.map((c) => `+${c.at - since} ${ports.get(c.port) ?? c.port} present=${c.sessionPresent}`).join(', ')}`;
}
