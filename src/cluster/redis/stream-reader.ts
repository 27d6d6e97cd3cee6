/**
 * This node's stream consumer: reads the QoS 1/2 envelopes other nodes wrote to its Redis Stream
 * (consumer group, pending entries first after a (re)start), hands them to the broker, and
 * acknowledges them (XACK + XDEL) in the same transaction as the session changes they caused.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { Transaction, TransactionPart } from '../../persistence/redis/transaction.js';
import type { ClusterHandler } from '../types.js';
import type { ClusterLogger } from './connections.js';

/** What a node's stream holds per entry: one field with the envelope (or a batch of them). */
export const STREAM_FIELD = 'm';
/** In an entry redirected to an adopter: the (dead) node it was written for. */
export const STREAM_TARGET_FIELD = 'f';
const GROUP = 'starling';
/** Entries read at once; the next read waits until their deliveries are committed. */
const STREAM_BATCH = 512;

/** What the reader needs from the bus around it. */
export interface StreamReaderHost {
  /** True once the node is registered and synchronised (it reads nothing before). */
  isSynced(): boolean;
  /** True once the node leaves. */
  isClosing(): boolean;
  /** Hands an entry's value (an envelope or a batch) to the broker; `forNode`: the dead node it was redirected from; `id`: the entry's id. */
  receive(value: Buffer, forNode: string | undefined, id: string): void;
  /** The consumer group is gone (Redis lost its data): the node is no longer registered. */
  unsync(): void;
  /** Registers the node again (after `unsync`, or a read failing while not synchronised). */
  regain(): void;
}

/** The value of the envelope field of a stream entry. */
export function streamValue(fields: Buffer[]): Buffer | undefined {
  return field(fields, STREAM_FIELD);
}

/** The node a redirected entry was written for (undefined for an entry written for this node). */
export function streamTarget(fields: Buffer[]): string | undefined {
  return field(fields, STREAM_TARGET_FIELD)?.toString();
}

function field(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === name) return fields[i + 1];
  return undefined;
}

/** The consumer of `stream:{nodeId}`. */
export class StreamReader implements TransactionPart {
  private acks: string[] = [];
  /** Read the entries delivered to this consumer but not acknowledged (after a start or an error) before new ones. */
  private readPending = true;
  private paused = false;
  private parked: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private handler: ClusterHandler | undefined;

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    /** The blocking connection (the reader's own). */
    private readonly reader: Redis,
    private readonly host: StreamReaderHost,
    private readonly log: ClusterLogger,
  ) {}

  /** Creates the consumer group (once; kept across restarts). */
  async createGroup(redis: Redis): Promise<void> {
    try {
      await redis.xgroup('CREATE', this.keys.stream(this.nodeId), GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  /** The next read starts with the pending entries (after a resynchronisation). */
  rereadPending(): void {
    this.readPending = true;
  }

  /** Starts reading; `handler` commits what the entries caused. */
  start(handler: ClusterHandler): void {
    this.handler = handler;
    this.loop = this.consume();
  }

  /** Resolves once the loop ended (after the reader connection was closed). */
  async stopped(): Promise<void> {
    await this.loop?.catch(() => undefined);
  }

  /** Stops reading between two batches; resolves once the reader waits (or after 2 s). */
  pause(): Promise<void> {
    this.paused = true;
    return Promise.race([new Promise<void>((resolve) => (this.parked = resolve)), sleep(2000)]);
  }

  /** Reads again after `pause`. */
  resume(): void {
    this.paused = false;
  }

  write(tx: Transaction): undefined {
    if (this.acks.length > 0) {
      const stream = this.keys.stream(this.nodeId);
      tx.xack(stream, GROUP, ...this.acks);
      tx.xdel(stream, ...this.acks);
      this.acks = [];
    }
    return undefined;
  }

  private async consume(): Promise<void> {
    const host = this.host;
    while (!host.isClosing()) {
      if (this.paused) {
        this.parked?.();
        this.parked = undefined;
        await sleep(20);
        continue;
      }
      if (this.reader.status !== 'ready' || !host.isSynced()) {
        await sleep(200);
        continue;
      }
      try {
        await this.readBatch();
      } catch (error) {
        if (host.isClosing()) return;
        if (String(error).includes('NOGROUP')) host.unsync();
        this.readPending = true;
        await sleep(200);
        if (host.isSynced()) this.log.warn({ err: error }, 'cluster: reading this node\'s stream failed; retrying');
        else host.regain();
      }
    }
  }

  private async readBatch(): Promise<void> {
    const pending = this.readPending;
    const args: (string | number)[] = ['GROUP', GROUP, this.nodeId, 'COUNT', STREAM_BATCH];
    if (!pending) args.push('BLOCK', 1000);
    args.push('STREAMS', this.keys.stream(this.nodeId), pending ? '0' : '>');
    const reply = (await this.reader.callBuffer('XREADGROUP', ...args)) as [Buffer, [Buffer, Buffer[] | null][]][] | null;
    const entries = reply?.[0]?.[1] ?? [];
    if (pending && entries.length === 0) this.readPending = false;
    if (entries.length === 0) return;
    for (const [rawId, fields] of entries) {
      const id = rawId.toString();
      this.acks.push(id);
      const value = fields === null ? undefined : streamValue(fields);
      if (value !== undefined) this.host.receive(value, streamTarget(fields ?? []), id);
    }
    this.handler?.requestCommit();
    // Wait until these deliveries and their acknowledgements are committed before reading more:
    // bounded memory, and a pending re-read never sees entries already being handled.
    await this.handler?.settle();
    if (pending) this.readPending = true;
  }
}

/** Resolves after `ms` (does not keep the process alive). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
