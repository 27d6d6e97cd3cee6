/**
 * Client-id ownership across nodes: a claim takes `owner:{clientId}` (atomic SET … GET) and asks the
 * previous holder to let go (a control message on its channel, answered once its state is stored);
 * the wills of the clients connected here, kept in Redis for whoever adopts this node; and the
 * ownership a clean session gives up when it ends. Wills and releases commit with their turn; the
 * claims of one turn go to Redis together, one script each in one pipeline.
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { RedisStore } from '../../persistence/redis/redis-store.js';
import { execOrThrow, type Transaction, type TransactionPart } from '../../persistence/redis/transaction.js';
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

/**
 * A claim in one step. KEYS: the owner key, the session's record, deliveries and QoS 2 ids; ARGV:
 * this node, "1" to read the stored session, the prefix of the heartbeat keys. Takes the owner key
 * (SET … GET). When it was free or already this node's, the answer carries the stored session, if
 * asked for and there is one: {nil, 0, record, delivery values, QoS 2 ids}, or {} for none. When
 * another node held it: {that node, 1 if its heartbeat is alive} (the claim then asks it to let go).
 */
const CLAIM = `local previous = redis.call('SET', KEYS[1], ARGV[1], 'GET')
if previous and previous ~= ARGV[1] then return {previous, redis.call('EXISTS', ARGV[3] .. previous)} end
if ARGV[2] ~= '1' then return {} end
local session = redis.call('GET', KEYS[2])
if not session then return {} end
return {false, 0, session, redis.call('HVALS', KEYS[3]), redis.call('SMEMBERS', KEYS[4])}`;

/** The claim script, as ioredis defines it on the connection and its pipelines. */
interface ClaimCommand {
  starlingClaimBuffer(owner: string, session: string, deliveries: string, qos2: string, node: string, load: '0' | '1', alivePrefix: string): unknown;
}

/** The answer of CLAIM (binary: session records and bodies are v8-serialized). */
type ClaimReply = [] | [previous: Buffer, alive: number] | [null, 0, session: Buffer, deliveries: Buffer[], qos2: Buffer[]];

/** A claim waiting for the end of the turn. */
interface PendingClaim {
  clientId: string;
  load: boolean;
  resolve: (state: StoredState | undefined) => void;
  reject: (error: unknown) => void;
}

/** Who holds which client id, and the wills of the clients connected here. */
export class Ownership implements TransactionPart {
  private handler: ClusterHandler | undefined;
  private nextRid = 1;
  private readonly releaseWaiters = new Map<number, () => void>();
  /** Wills to store (a will) or forget (undefined) at the next commit. */
  private wills: { cid: string; will: Will | undefined }[] = [];
  /** Clean sessions that ended: their owner keys go at the next commit. */
  private released: string[] = [];
  /** Claims not sent yet: they go together at the end of the turn, or when the batch in flight is answered. */
  private claims: PendingClaim[] = [];
  /** A batch of claims is on its way to Redis (or scheduled to go at the end of this turn). */
  private claiming = false;

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    private readonly redis: Redis,
    private readonly store: RedisStore,
    private readonly log: ClusterLogger,
    private readonly claimTimeoutMs: number,
  ) {
    redis.defineCommand('starlingClaim', { numberOfKeys: 4, lua: CLAIM });
  }

  /** The broker, which lets go of sessions when asked. */
  setHandler(handler: ClusterHandler): void {
    this.handler = handler;
  }

  /**
   * Takes `clientId` for this node; the node that held it (if alive) lets go first. With `load`,
   * resolves with the client's stored session state (undefined when nothing is stored). Throws if
   * another node claimed it meanwhile.
   *
   * Claims go to Redis in batches, one CLAIM script each (a client id that was free or already this
   * node's costs that script and nothing more; only a takeover from another node takes further
   * steps): the claims of one event-loop turn together at its end, and while a batch is on its way,
   * the next one gathers until it is answered (group commit). A storm of CONNECTs costs one Redis
   * write and one read per batch, not per client.
   */
  claim(clientId: string, load: boolean): Promise<StoredState | undefined> {
    return new Promise((resolve, reject) => {
      this.claims.push({ clientId, load, resolve, reject });
      if (!this.claiming) {
        this.claiming = true;
        setImmediate(this.sendClaims);
      }
    });
  }

  private readonly sendClaims = (): void => {
    const claims = this.claims;
    this.claims = [];
    if (claims.length === 0) {
      this.claiming = false;
      return;
    }
    const keys = this.keys;
    const alivePrefix = keys.alive('');
    const send = (to: ClaimCommand, { clientId, load }: PendingClaim): unknown =>
      to.starlingClaimBuffer(keys.owner(clientId), keys.session(clientId), keys.deliveries(clientId), keys.qos2(clientId), this.nodeId, load ? '1' : '0', alivePrefix);
    let answers: Promise<[error: Error | null, reply: unknown][] | null>;
    if (claims.length === 1) {
      // One claim: the command alone (a pipeline costs more than it saves).
      answers = (send(this.redis as unknown as ClaimCommand, claims[0] as PendingClaim) as Promise<unknown>).then((reply) => [[null, reply]]);
    } else {
      const pipeline = this.redis.pipeline();
      for (const claim of claims) send(pipeline as unknown as ClaimCommand, claim);
      answers = pipeline.exec();
    }
    answers.then(
      (results) => {
        claims.forEach((claim, i) => {
          const [error, reply] = results?.[i] ?? [new Error('Redis pipeline aborted'), undefined];
          if (error !== null) claim.reject(error);
          else this.claimed(claim, reply as ClaimReply).then(claim.resolve, claim.reject);
        });
        this.sendClaims();
      },
      (error: unknown) => {
        for (const claim of claims) claim.reject(error);
        this.sendClaims();
      },
    );
  };

  /** What a claim's script answered: the stored session, or a takeover from another node. */
  private async claimed({ clientId, load }: PendingClaim, reply: ClaimReply): Promise<StoredState | undefined> {
    if (reply.length === 0) return undefined;
    if (reply[0] === null) return this.store.decodeSession(clientId, reply[2], reply[3], reply[4]);
    const previous = reply[0].toString();
    if (reply[1] === 1) await this.requestRelease(previous, clientId);
    // Its node has let go (or is dead): the client id changes sets, and its session is read now.
    const me = this.nodeId;
    const keys = this.keys;
    const pipeline = this.redis.pipeline().srem(keys.nodeClients(previous), clientId).sadd(keys.nodeClients(me), clientId);
    if (load) pipeline.getBuffer(keys.session(clientId)).hvalsBuffer(keys.deliveries(clientId)).smembers(keys.qos2(clientId));
    pipeline.get(keys.owner(clientId));
    const answers = await execOrThrow(pipeline);
    // Two connections with one client id on two nodes at once: the later claim wins.
    if (answers.at(-1) !== me) throw new Error('client id claimed by another node meanwhile');
    const session = answers[2] as Buffer | null | undefined;
    return load && session !== null && session !== undefined ? this.store.decodeSession(clientId, session, answers[3] as Buffer[], answers[4] as string[]) : undefined;
  }

  private requestRelease(node: string, clientId: string): Promise<void> {
    const rid = this.nextRid++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.releaseWaiters.delete(rid);
        this.log.warn({ clientId, node }, 'cluster: the node holding the session did not let go in time; taking it as stored');
        resolve();
      }, this.claimTimeoutMs);
      this.releaseWaiters.set(rid, () => {
        clearTimeout(timer);
        resolve();
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
