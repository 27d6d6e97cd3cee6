/**
 * Taking over a dead node: its persistent sessions (with their subscriptions, so routes point here),
 * a tombstone that redirects its stream and fences it should it come back, its clients' wills, the
 * entries of its stream it never delivered, and finally its removal from the route table. One
 * adopter per dead node (an atomic `SET NX` lock).
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { RedisStore } from '../../persistence/redis/redis-store.js';
import { execOrThrow } from '../../persistence/redis/transaction.js';
import type { StoredState } from '../../persistence/types.js';
import type { ClusterHandler } from '../types.js';
import { deliverArrivals } from '../arrivals.js';
import { streamPosition, type ArrivalMarks } from './arrival-marks.js';
import type { ClusterLogger } from './connections.js';
import type { Ownership } from './ownership.js';
import { formatRouteChange, type Routes } from './routes.js';
import { streamValue, type StreamReader } from './stream-reader.js';

/**
 * The adoption lock, taken only while the node's heartbeat key is still missing: a node that came
 * back in time (its rejoin beats first, see Membership.standing) is not adopted, and one that comes
 * back later finds the lock or the tombstone and fences itself.
 */
const TAKE_ADOPTION = "if redis.call('exists', KEYS[2]) == 1 then return 0 end if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end return 0";

/** Moves the owner key from the dead node to the adopter, unless a client id was claimed elsewhere meanwhile. */
const MOVE_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2]) return 1 end return 0";

/** The pieces of the bus an adoption works with. */
export interface AdoptionParts {
  store: RedisStore;
  reader: StreamReader;
  routes: Routes;
  ownership: Ownership;
  arrivals: ArrivalMarks;
}

/** Adopts dead nodes for this node. */
export class Adoption {
  /** Dead node → the client ids adopted from it (every adoption of this node's life). */
  private readonly adopted = new Map<string, Set<string>>();
  /** Client ids whose owner key names this node while their sessions are not here yet (an adoption under way). */
  private readonly arriving = new Set<string>();

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    private readonly redis: Redis,
    private readonly parts: AdoptionParts,
    private readonly log: ClusterLogger,
  ) {}

  /** Takes over `dead` unless another node does; resolves once done. */
  async adopt(dead: string, handler: ClusterHandler): Promise<void> {
    const { keys, redis } = this;
    const won = (await redis.eval(TAKE_ADOPTION, 2, keys.adopt(dead), keys.alive(dead), this.nodeId, '60000')) as number;
    if (won !== 1) return;
    this.log.warn({ node: dead }, "cluster: node missed its heartbeats: adopting its sessions, publishing its clients' wills");
    // This node's own stream waits while the dead node's entries are replayed (keeps their order).
    await this.parts.reader.pause();
    const marked: string[] = [];
    try {
      // 1. Its persistent sessions come here, with their subscriptions (so routes point here too).
      //    Meanwhile messages for the dead node keep collecting in its stream.
      const { moved, sessions } = await this.takeSessions(dead, marked);
      this.adopted.set(dead, new Set(moved));
      // This node's own stream entries from before were routed to the dead node for these sessions too.
      this.parts.arrivals.mark(moved, await streamPosition(redis, keys.stream(this.nodeId)));
      handler.adoptSessions(sessions);
      handler.requestCommit();
      await handler.settle();
      // 2. Tombstone: from now on every node's stream writes for the dead node land in this node's
      //    stream (outbox.ts, ROUTED_XADD), so its own stream is frozen; and should it come back from
      //    a network cut, it finds itself fenced and drops its clients.
      await redis.set(keys.dead(dead), this.nodeId);
      // 3. The wills of the clients that were connected there.
      const wills = await this.parts.ownership.willsOf(dead, false);
      for (const [cid, will] of wills) handler.publishOrphanWill(cid, will);
      // 4. What was sent to the dead node and not delivered there goes to the sessions now held here.
      const replayed = await this.replay(dead, handler, new Set(moved));
      handler.requestCommit();
      await handler.settle();
      // The sessions are here with what the dead node's stream held for them: they may move on.
      for (const cid of marked) this.arriving.delete(cid);
      // 5. Only now is the dead node taken out of the route table.
      this.parts.routes.dropNode(dead);
      const tx = redis.multi();
      tx.del(keys.stream(dead), keys.routes(dead), keys.nodeClients(dead), keys.nodeWills(dead));
      tx.srem(keys.nodes(), dead);
      tx.publish(keys.routesChannel(), formatRouteChange({ node: dead, op: 'drop' }));
      tx.del(keys.adopt(dead));
      await execOrThrow(tx);
      this.log.warn({ node: dead, sessions: sessions.sessions.length, wills: wills.length, replayed }, 'cluster: dead node adopted');
    } finally {
      for (const cid of marked) this.arriving.delete(cid);
      this.parts.reader.resume();
    }
  }

  /**
   * True while `clientId` is being adopted here: its owner key names this node but its session is
   * not here yet. A claim from elsewhere must wait (it is refused, the client retries), or it would
   * take the session as stored while this node goes on to adopt it too.
   */
  isArriving(clientId: string): boolean {
    return this.arriving.has(clientId);
  }

  /**
   * The sessions a stream entry redirected from `dead` may reach: those adopted from it (from any
   * adopted node if `dead` was adopted by a node this one adopted in turn).
   */
  adoptedFrom(dead: string): ReadonlySet<string> {
    const direct = this.adopted.get(dead);
    if (direct !== undefined) return direct;
    const all = new Set<string>();
    for (const ids of this.adopted.values()) for (const id of ids) all.add(id);
    return all;
  }

  /** Moves the dead node's client ids here (those not claimed elsewhere meanwhile) and loads their sessions. */
  private async takeSessions(dead: string, marked: string[]): Promise<{ moved: string[]; sessions: StoredState }> {
    const { keys, redis } = this;
    const moved: string[] = [];
    for (const cid of await redis.smembers(keys.nodeClients(dead))) {
      // Marked before the owner key moves: from then on a release request for it finds it arriving.
      this.arriving.add(cid);
      marked.push(cid);
      if (((await redis.eval(MOVE_OWNER, 1, keys.owner(cid), dead, this.nodeId)) as number) === 0) continue;
      await redis.sadd(keys.nodeClients(this.nodeId), cid);
      moved.push(cid);
    }
    return { moved, sessions: await this.parts.store.loadSessions(moved) };
  }

  /**
   * Delivers every entry left in the dead node's stream to the sessions adopted from it (`adopted`),
   * not to this node's own subscribers: a message was written to the dead node's stream for the
   * subscribers there; the ones here had their copy through this node's stream (or locally).
   * Returns how many envelopes.
   */
  private async replay(dead: string, handler: ClusterHandler, adopted: ReadonlySet<string>): Promise<number> {
    const entries = (await this.redis.xrangeBuffer(this.keys.stream(dead), '-', '+')) as [Buffer, Buffer[]][];
    let replayed = 0;
    for (const [, fields] of entries) {
      const value = streamValue(fields);
      if (value !== undefined) replayed += deliverArrivals(handler, value, undefined, adopted);
    }
    return replayed;
  }
}
