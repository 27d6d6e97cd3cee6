/** The dashboard's own MQTT connection (MQTT.js browser build over WebSocket) and the topic tree it feeds. */
import type { connect as mqttConnect, MqttClient } from 'mqtt';

const CREDENTIALS_KEY = 'starling.mqtt';

/** One level of the topic tree. */
export interface TopicNode {
  name: string;
  /** Full topic of this level. */
  topic: string;
  children: Map<string, TopicNode>;
  /** Messages seen on this exact topic. */
  count: number;
  last?: TopicMessage;
}

/** The last message of one topic. */
export interface TopicMessage {
  payload: Uint8Array;
  qos: number;
  retain: boolean;
  at: Date;
}

/** Connection state as shown in the header; `refused`: the broker answered CONNACK with a refusal (see `problem`). */
export type LiveState = 'connecting' | 'online' | 'offline' | 'refused';

/** CONNACK refusals in words (MQTT 5 reason codes, and their 3.1.1 return codes). */
const REFUSALS: Record<number, string> = {
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad authentication method',
  0x97: 'quota exceeded',
};

/** Why a CONNACK refused the connection, in words. */
export function refusalText(code: number): string {
  return `${REFUSALS[code] ?? 'refused'} (CONNACK 0x${code.toString(16).padStart(2, '0')})`;
}

/** Optional MQTT credentials for the dashboard's own connection, kept for this tab. */
export function credentials(): { username?: string; password?: string } {
  try {
    return JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) ?? '{}') as { username?: string; password?: string };
  } catch {
    return {};
  }
}

/** Remembers MQTT credentials for this tab. */
export function setCredentials(username: string, password: string): void {
  sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(username === '' ? {} : { username, password }));
}

/**
 * Subscribes to every topic ("#" and "$SYS/#") while the topic explorer wants it, and keeps a tree
 * of topics with the last message of each. Listeners are told at most every 200 ms.
 */
export class Live {
  readonly root: TopicNode = { name: '', topic: '', children: new Map(), count: 0 };
  state: LiveState = 'offline';
  /** Why the broker refused the last connection, in words; undefined while it has not. */
  problem: string | undefined;
  messages = 0;
  private client: MqttClient | undefined;
  private watching = false;
  private readonly listeners = new Set<() => void>();
  private notifyScheduled = false;

  /** Connects to /mqtt on the server the page came from. */
  connect(): void {
    if (this.client !== undefined || this.state === 'connecting') return;
    this.setState('connecting');
    // MQTT.js is most of the dashboard's weight: loaded apart, so the first screen does not wait for it.
    import('mqtt')
      .then(({ default: mqtt }) => this.open(mqtt.connect))
      .catch((error: unknown) => {
        console.warn(error);
        this.setState('offline');
      });
  }

  /** Drops the connection and connects again (new credentials). */
  reconnect(): void {
    this.client?.end(true);
    this.client = undefined;
    this.state = 'offline';
    this.connect();
  }

  private open(connect: typeof mqttConnect): void {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const base = new URL('./mqtt', location.href);
    const url = `${scheme}://${base.host}${base.pathname}`;
    const { username, password } = credentials();
    const client = connect(url, {
      clientId: `starling-dashboard-${Math.random().toString(16).slice(2, 10)}`,
      // MQTT 5: a refusal says why (0x86 credentials, 0x87 not authorized, 0x8A banned).
      protocolVersion: 5,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 3000,
      connectTimeout: 5000,
      ...(username === undefined ? {} : { username, password }),
    });
    client.on('connect', () => {
      if (this.client !== client) return;
      this.problem = undefined;
      this.setState('online');
      if (this.watching) this.subscribe();
    });
    client.on('error', (error: Error & { code?: unknown }) => {
      // A CONNACK refusal: MQTT.js does not retry it; the page says why and offers credentials.
      if (this.client !== client || typeof error.code !== 'number' || client.connected) return;
      this.problem = refusalText(error.code);
      this.setState('refused');
    });
    client.on('close', () => {
      if (this.client === client && this.state !== 'refused') this.setState('offline');
    });
    client.on('message', (topic, payload, packet) => this.record(topic, payload, packet.qos, packet.retain));
    this.client = client;
  }

  /** Starts (or stops) receiving every topic. */
  watch(on: boolean): void {
    if (this.watching === on) return;
    this.watching = on;
    if (this.client?.connected !== true) return;
    if (on) this.subscribe();
    else this.client.unsubscribe(['#', '$SYS/#']);
  }

  /** Whether every topic is being received. */
  get isWatching(): boolean {
    return this.watching;
  }

  /** Called (throttled) when the tree or the state changes; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The node of a topic, if seen. */
  find(topic: string): TopicNode | undefined {
    let node: TopicNode | undefined = this.root;
    for (const level of topic.split('/')) {
      node = node.children.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private subscribe(): void {
    this.client?.subscribe(['#', '$SYS/#'], { qos: 0 });
  }

  private record(topic: string, payload: Uint8Array, qos: number, retain: boolean): void {
    let node = this.root;
    const levels = topic.split('/');
    levels.forEach((level, i) => {
      let child = node.children.get(level);
      if (child === undefined) {
        child = { name: level, topic: levels.slice(0, i + 1).join('/'), children: new Map(), count: 0 };
        node.children.set(level, child);
      }
      node = child;
    });
    node.count++;
    node.last = { payload: new Uint8Array(payload), qos, retain, at: new Date() };
    this.messages++;
    this.notify();
  }

  private setState(state: LiveState): void {
    this.state = state;
    const badge = document.getElementById('live');
    if (badge !== null) {
      badge.textContent = state;
      badge.dataset['state'] = state;
    }
    this.notify();
  }

  private notify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setTimeout(() => {
      this.notifyScheduled = false;
      for (const listener of this.listeners) listener();
    }, 200);
  }
}
