/**
 * The four Redis connections of a cluster node, each for one kind of traffic, with their connection
 * errors logged once per outage, and the first connect (with the Redis version check).
 */
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { withoutPassword } from '../../persistence/redis/redis-store.js';

/** The logging the cluster needs (pino-compatible). */
export interface ClusterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A node's connections to one Redis. */
export class RedisConnections {
  /** Commands and transactions. Commands fail at once while disconnected (no offline queue). */
  readonly cmd: Redis;
  /**
   * Heartbeat and failure detection, on their own connection: a node busy with a large backlog of
   * commands still beats on time (and is not declared dead for being busy).
   */
  readonly beat: Redis;
  /** Pub/sub: this node's channel, route changes, retained changes. */
  readonly sub: Redis;
  /** The blocking stream reader. */
  readonly reader: Redis;
  /** The Redis URL without its password, for messages and logs. */
  readonly url: string;
  /** Set once the node leaves (or its first connect failed): no more logging, no more retries. */
  closing = false;
  private lastError: string | undefined;
  private readonly reportedErrors = new Set<string>();
  private connecting: Promise<void> | undefined;

  constructor(url: string, nodeId: string, private readonly log: ClusterLogger) {
    this.url = withoutPassword(url);
    const retryStrategy = (times: number): number => Math.min(100 * times, 2000);
    // A connect attempt into a silent network (packets dropped) gives up after 3 s and is retried,
    // so a healed link is found again within seconds. A command whose answer never came is never
    // sent again on the next connection (ioredis would by default): its transaction may have been
    // applied already, or may land after this node was declared dead (docs/clustering.md, Fencing).
    const base = { lazyConnect: true, retryStrategy, maxRetriesPerRequest: 1, connectTimeout: 3000, autoResendUnfulfilledCommands: false, connectionName: `starling:${nodeId}` } as const;
    this.cmd = new Redis(url, { ...base, enableOfflineQueue: false });
    this.beat = new Redis(url, { ...base, enableOfflineQueue: false });
    this.sub = new Redis(url, { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.reader = new Redis(url, { ...base, enableOfflineQueue: false });
    for (const [name, client] of this.named()) {
      client.on('error', (error: Error) => this.connectionError(name, error));
      client.on('ready', () => this.reportedErrors.delete(name));
      // Without resending (above), ioredis would leave these promises pending for ever: a commit
      // in flight fails instead, and what waited for it is given up (the clients resend).
      client.on('close', () => failUnanswered(client, `Redis connection "${name}" closed before it answered`));
    }
  }

  /**
   * Drops every connection at once (TCP reset: nothing still unsent leaves this host later) and
   * fails the commands not yet answered; ioredis then reconnects. Used when Redis stopped
   * confirming this node's heartbeat: past its lease, this node must not write.
   */
  reset(): void {
    for (const [name, client] of this.named()) {
      failUnanswered(client, `Redis connection "${name}" reset: this node's lease ran out`);
      const stream: unknown = client.stream;
      if (!(stream instanceof Socket) || stream.destroyed) continue;
      try {
        stream.resetAndDestroy();
      } catch {
        stream.destroy();
      }
    }
  }

  /** True while commands and pub/sub both work. */
  get usable(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  /** Connects every connection (once; later calls share the first), and checks the Redis version. */
  connect(): Promise<void> {
    this.connecting ??= Promise.all(this.named().map(([, client]) => client.connect()))
      .catch((error: unknown) => {
        this.closing = true;
        for (const [, client] of this.named()) client.disconnect();
        throw new Error(`cluster: cannot reach Redis at ${this.url}: ${this.lastError ?? (error instanceof Error ? error.message : String(error))}`);
      })
      .then(async () => {
        // SET … GET (client-id ownership) needs Redis 6.2.
        const info = await this.cmd.info('server');
        const version = /redis_version:(\d+)\.(\d+)/.exec(info);
        if (version !== null && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
          throw new Error(`cluster: Redis ${version[1]}.${version[2]} is too old; Starling needs Redis 6.2 or later`);
        }
      });
    return this.connecting;
  }

  private named(): (readonly [string, Redis])[] {
    return [
      ['commands', this.cmd],
      ['heartbeat', this.beat],
      ['subscriber', this.sub],
      ['reader', this.reader],
    ];
  }

  private connectionError(name: string, error: Error): void {
    this.lastError = error.message;
    // Once per connection and outage: ioredis retries every few hundred milliseconds.
    if (this.closing || this.reportedErrors.has(name)) return;
    this.reportedErrors.add(name);
    this.log.warn({ connection: name, err: error.message }, 'cluster: Redis connection error (retrying; logged once per outage)');
  }
}

/** Rejects every command `client` sent and has no answer for (their outcome is unknown). */
function failUnanswered(client: Redis, why: string): void {
  const queue = client.commandQueue;
  if (queue.length === 0) return;
  const error = new Error(`${why}; the outcome of ${queue.length} commands in flight is unknown`);
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) item.command.reject(error);
}
