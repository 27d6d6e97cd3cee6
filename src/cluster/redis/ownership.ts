/**
 * Client-id ownership across nodes: a claim takes `owner:{clientId}` (atomic SET … GET) and asks the
 * previous holder to let go (a control message on its channel, answered once its state is stored);
 * the wills of the clients connected here, kept in Redis for whoever adopts this node; and the
 * ownership a clean session gives up when it ends. Wills and releases commit with their turn.
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { RedisStore } from '../../persistence/redis/redis-store.js';
import type { Transaction, TransactionPart } from '../../persistence/redis/transaction.js';
import type { StoredState } from '../../persistence/types.js';
import type { Will } from '../../protocol/types.js';
import type { ClusterHandler } from '../types.js';
import type { ClusterLogger } from './connections.js';

/** First byte of a control message on a node channel ("{": JSON); envelopes start with 1, batches with 2. */
export const CONTROL = 0x7b;

/** A node asks another to let go of a client id, and the answer. */
export type Control = { t: 'release'; cid: string; from: string; rid: number } | { t: 'released'; rid: number };

/** Deletes the owner key only if it still names this node (a later claim elsewhere stays). */
const RELEASE_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end return 0";

/** Names this node owner if the key still names the node that let go (ARGV[1], "" for none): 1, else 0. */
const TAKE_OWNER = "if (redis.call('get', KEYS[1]) or '') == ARGV[1] then redis.call('set', KEYS[1], ARGV[2]) return 1 end return 0";

/** Who holds which client id, and the wills of the clients connected here. */
export class Ownership implements TransactionPart {
  private handler: ClusterHandler | undefined;
  private nextRid = 1;
  private readonly releaseWaiters = new Map<number, () => void>();
  /** Wills to store (a will) or forget (undefined) at the next commit. */
  private wills: { cid: string; will: Will | undefined }[] = [];
  /** Clean sessions that ended: their owner keys go at the next commit. */
  private released: string[] = [];
  /** Claims in progress here, by client id: a later claim of the same id waits for the earlier one. */
  private readonly claiming = new Map<string, Promise<unknown>>();

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    private readonly redis: Redis,
    private readonly store: RedisStore,
    private readonly log: ClusterLogger,
    private readonly claimTimeoutMs: number,
  ) {}

  /** The broker, which lets go of sessions when asked. */
  setHandler(handler: ClusterHandler): void {
    this.handler = handler;
  }

  /**
   * Takes `clientId` for this node; the node that held it lets go first. With `load`, resolves with
   * the client's stored session state. Throws if another node claimed it meanwhile, and — unless
   * the session is `clean` — if the node that holds it is still a member of the cluster but does
   * not let go in time (cut off, or stopped and not yet adopted): what that node holds for the
   * session (its stream's entries, state it could not store) reaches the session only through that
   * node or its adopter, so the client is refused until one of them answers.
   */
  claim(clientId: string, load: boolean, clean = false): Promise<StoredState | undefined> {
    // A client that gives up waiting for CONNACK connects again while its first claim still waits
    // for the previous node: the second claim would find this node already named owner and skip
    // the release. Claims of one client id run one after the other.
    const before = this.claiming.get(clientId);
    const run = (before === undefined ? Promise.resolve() : before.then(() => undefined, () => undefined)).then(() => this.claimOnce(clientId, load, clean));
    this.claiming.set(clientId, run);
    const forget = (): void => {
      if (this.claiming.get(clientId) === run) this.claiming.delete(clientId);
    };
    run.then(forget, forget);
    return run;
  }

  /**
   * The owner key is taken only once the previous node has let go (compare and set): a claim that
   * waits must not name this node owner, or a claim elsewhere would ask this node, which holds
   * nothing, instead of the node that holds the session. Two claims at once: the one that takes
   * the key second asks the first to let go in turn (the later claim wins).
   */
  private async claimOnce(clientId: string, load: boolean, clean: boolean): Promise<StoredState | undefined> {
    const me = this.nodeId;
    const owner = this.keys.owner(clientId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const previous = await this.redis.get(owner);
      if (previous !== null && previous !== me) {
        const released = (await this.redis.exists(this.keys.alive(previous))) === 1 && (await this.requestRelease(previous, clientId));
        if (!released && !clean && (await this.redis.sismember(this.keys.nodes(), previous)) === 1) {
          throw new Error(`the session is held by node ${previous}, which does not answer; refused until it does or is adopted`);
        }
      }
      if (((await this.redis.eval(TAKE_OWNER, 1, owner, previous ?? '', me)) as number) === 0) continue;
      if (previous !== null && previous !== me) {
        await this.redis.srem(this.keys.nodeClients(previous), clientId);
        await this.redis.sadd(this.keys.nodeClients(me), clientId);
      }
      const state = load ? await this.store.loadSessions([clientId]) : undefined;
      if ((await this.redis.get(owner)) !== me) throw new Error('client id claimed by another node meanwhile');
      return state;
    }
    throw new Error('client id claimed by other nodes meanwhile, three times');
  }

  /** Asks `node` to let go of `clientId`; true once it did, false if it did not answer in time. */
  private requestRelease(node: string, clientId: string): Promise<boolean> {
    const rid = this.nextRid++;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.releaseWaiters.delete(rid);
        this.log.warn({ clientId, node }, 'cluster: the node holding the session did not let go in time');
        resolve(false);
      }, this.claimTimeoutMs);
      this.releaseWaiters.set(rid, () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.send(node, { t: 'release', cid: clientId, from: this.nodeId, rid });
    });
  }

  /** A control message that arrived on this node's channel. */
  onControl(payload: Buffer): void {
    const control = JSON.parse(payload.toString()) as Control;
    if (control.t === 'released') {
      this.releaseWaiters.get(control.rid)?.();
      this.releaseWaiters.delete(control.rid);
      return;
    }
    const answer = (): void => this.send(control.from, { t: 'released', rid: control.rid });
    if (this.handler === undefined) return answer();
    this.handler.releaseSession(control.cid, control.from).then(answer, (error: unknown) => {
      this.log.error({ clientId: control.cid, err: error }, 'cluster: letting go of a session failed');
      answer();
    });
  }

  private send(node: string, control: Control): void {
    this.redis.publish(this.keys.nodeChannel(node), JSON.stringify(control)).catch(() => undefined);
  }

  /** A client connected here (with its will, if any). */
  online(clientId: string, will: Will | undefined): void {
    this.wills.push({ cid: clientId, will });
  }

  /** A client connected here went away; a clean session gives its client id up. */
  offline(clientId: string, persistent: boolean): void {
    this.wills.push({ cid: clientId, will: undefined });
    if (!persistent) this.released.push(clientId);
  }

  write(tx: Transaction): undefined {
    const wills = this.keys.nodeWills(this.nodeId);
    for (const { cid, will } of this.wills) {
      if (will === undefined) tx.hdel(wills, cid);
      else tx.hset(wills, cid, serialize(will));
    }
    for (const cid of this.released) tx.eval(RELEASE_OWNER, 1, this.keys.owner(cid), this.nodeId);
    this.wills = [];
    this.released = [];
    return undefined;
  }

  /**
   * The wills of `node`'s clients that were connected when it stopped without closing them (a crash);
   * with `take`, they are deleted from Redis as they are read (this node's own previous life).
   */
  async willsOf(node: string, take: boolean): Promise<[string, Will][]> {
    const key = this.keys.nodeWills(node);
    const wills = await this.redis.hgetallBuffer(key);
    if (take) await this.redis.del(key);
    return Object.entries(wills).map(([cid, value]) => [cid, deserialize(value) as Will]);
  }
}
