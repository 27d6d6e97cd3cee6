/**
 * Client-id ownership across nodes: a claim takes `owner:{clientId}` when it is free or ours (one script), else asks the
 * previous holder to let go (a control message on its channel, answered once its state is stored);
 * the wills of the clients connected here, kept in Redis for whoever adopts this node; and the
 * ownership a clean session gives up when it ends. Wills and releases commit with their turn; the
 * claims of one turn go to Redis together, one script each in one pipeline.
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { RedisStore } from '../../persistence/redis/redis-store.js';
import { type Transaction, type TransactionPart } from '../../persistence/redis/transaction.js';
import type { StoredState } from '../../persistence/types.js';
import type { Will } from '../../protocol/types.js';
import type { ClusterHandler } from '../types.js';
import { streamPosition, type ArrivalMarks } from './arrival-marks.js';
import type { ClusterLogger } from './connections.js';

/** First byte of a control message on a node channel ("{": JSON); envelopes start with 1, batches with 2. */
export const CONTROL = 0x7b;

/** A node asks another to let go of a client id, and the answer. */
export type Control =
  | { t: 'release'; cid: string; from: string; rid: number }
  | { t: 'released'; rid: number }
  /** The node cannot let go yet: the session is not in its memory (sessions being reloaded after a lost lease, or adopted). */
  | { t: 'not-yet'; rid: number };

/** Deletes the owner key only if it still names this node (a later claim elsewhere stays). */
const RELEASE_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end return 0";

/** Names this node owner if the key still names the node that let go (ARGV[1], "" for none): 1, else 0. */
const TAKE_OWNER = "if (redis.call('get', KEYS[1]) or '') == ARGV[1] then redis.call('set', KEYS[1], ARGV[2]) return 1 end return 0";

/**
 * The common claim in one step. KEYS: the owner key, the session's record, deliveries and QoS 2
 * ids; ARGV: this node, "1" to read the stored session. When the owner key is free or already this
 * node's, it names this node and the answer carries the stored session, if asked for and there is
 * one: {nil, record, delivery values, QoS 2 ids}, or {} for none. When another node holds it, the
 * key is left alone and the answer is {that node}: the claim then takes the slow path (that node
 * lets go first, then a compare-and-set).
 */
const CLAIM = `local previous = redis.call('GET', KEYS[1])
if previous and previous ~= ARGV[1] then return {previous} end
if not previous then redis.call('SET', KEYS[1], ARGV[1]) end
if ARGV[2] ~= '1' then return {} end
local session = redis.call('GET', KEYS[2])
if not session then return {} end
return {false, session, redis.call('HVALS', KEYS[3]), redis.call('SMEMBERS', KEYS[4])}`;

/** The claim script, as ioredis defines it on the connection and its pipelines. */
interface ClaimCommand {
  starlingClaimBuffer(owner: string, session: string, deliveries: string, qos2: string, node: string, load: '0' | '1'): unknown;
}

/** The answer of CLAIM (binary: session records and bodies are v8-serialized). */
type ClaimReply = [] | [previous: Buffer] | [null, session: Buffer, deliveries: Buffer[], qos2: Buffer[]];

/** A claim waiting for the end of the turn. */
interface PendingClaim {
  clientId: string;
  load: boolean;
  clean: boolean;
  resolve: (state: StoredState | undefined) => void;
  reject: (error: unknown) => void;
}

/** Who holds which client id, and the wills of the clients connected here. */
export class Ownership implements TransactionPart {
  private handler: ClusterHandler | undefined;
  private nextRid = 1;
  private readonly releaseWaiters = new Map<number, (released: boolean) => void>();
  /** Wills to store (a will) or forget (undefined) at the next commit. */
  private wills: { cid: string; will: Will | undefined }[] = [];
  /** Clean sessions that ended: their owner keys go at the next commit. */
  private released: string[] = [];
  /** Claims not sent yet: they go together at the end of the turn, or when the batch in flight is answered. */
  private claims: PendingClaim[] = [];
  /** A batch of claims is on its way to Redis (or scheduled to go at the end of this turn). */
  private sending = false;
  /** Claims in progress here, by client id: a later claim of the same id waits for the earlier one. */
  private readonly claiming = new Map<string, Promise<unknown>>();

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    private readonly redis: Redis,
    private readonly store: RedisStore,
    private readonly log: ClusterLogger,
    private readonly claimTimeoutMs: number,
    /** Sessions taken over from another node are marked with where this node's stream stood. */
    private readonly arrivals: ArrivalMarks,
    /**
     * False while this node may not hand a session over: after its lease ran out it dropped every
     * session from memory, and until it has reloaded them from Redis its stream may hold entries
     * for them that only it will read; or it is adopting the session (its owner key names this
     * node, the session is on its way here, the dead node's stream will be replayed into it). A
     * session taken from Redis meanwhile would miss those messages, or live on twice.
     */
    private readonly mayRelease: (clientId: string) => boolean = () => true,
  ) {
    redis.defineCommand('starlingClaim', { numberOfKeys: 4, lua: CLAIM });
  }

  /** The broker, which lets go of sessions when asked. */
  setHandler(handler: ClusterHandler): void {
    this.handler = handler;
  }

  /**
   * Takes `clientId` for this node; the node that held it lets go first. With `load`, resolves with
   * the client's stored session state (undefined when nothing is stored). Throws if another node
   * claimed it meanwhile, and — unless the session is `clean` — if the node that holds it is still
   * a member of the cluster but does not let go in time (cut off, or stopped and not yet adopted):
   * what that node holds for the session (its stream's entries, state it could not store) reaches
   * the session only through that node or its adopter, so the client is refused until one of them
   * answers.
   *
   * Claims go to Redis in batches, one CLAIM script each (a client id that was free or already this
   * node's costs that script and nothing more; only a takeover from another node takes further
   * steps): the claims of one event-loop turn together at its end, and while a batch is on its way,
   * the next one gathers until it is answered (group commit). A storm of CONNECTs costs one Redis
   * write and one read per batch, not per client.
   */
  claim(clientId: string, load: boolean, clean = false): Promise<StoredState | undefined> {
    // A client that gives up waiting for CONNACK connects again while its first claim still waits
    // for the previous node: the second claim would find this node already named owner and skip
    // the release. Claims of one client id run one after the other.
    const before = this.claiming.get(clientId);
    const start = (): Promise<StoredState | undefined> =>
      new Promise((resolve, reject) => {
        this.claims.push({ clientId, load, clean, resolve, reject });
        if (!this.sending) {
          this.sending = true;
          setImmediate(this.sendClaims);
        }
      });
    const run = before === undefined ? start() : before.then(start, start);
    this.claiming.set(clientId, run);
    const forget = (): void => {
      if (this.claiming.get(clientId) === run) this.claiming.delete(clientId);
    };
    run.then(forget, forget);
    return run;
  }

  private readonly sendClaims = (): void => {
    const claims = this.claims;
    this.claims = [];
    if (claims.length === 0) {
      this.sending = false;
      return;
    }
    const keys = this.keys;
    const send = (to: ClaimCommand, { clientId, load }: PendingClaim): unknown =>
      to.starlingClaimBuffer(keys.owner(clientId), keys.session(clientId), keys.deliveries(clientId), keys.qos2(clientId), this.nodeId, load ? '1' : '0');
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

  /** What a claim's script answered: the stored session, or another node holds the id (the slow path). */
  private async claimed({ clientId, load, clean }: PendingClaim, reply: ClaimReply): Promise<StoredState | undefined> {
    if (reply.length === 0) return undefined;
    if (reply[0] === null) return this.store.decodeSession(clientId, reply[1], reply[2], reply[3]);
    return this.takeOver(clientId, load, clean);
  }

  /**
   * The owner key is taken only once the previous node has let go (compare and set): a claim that
   * waits must not name this node owner, or a claim elsewhere would ask this node, which holds
   * nothing, instead of the node that holds the session. Two claims at once: the one that takes
   * the key second asks the first to let go in turn (the later claim wins).
   */
  private async takeOver(clientId: string, load: boolean, clean: boolean): Promise<StoredState | undefined> {
    const me = this.nodeId;
    const owner = this.keys.owner(clientId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const previous = await this.redis.get(owner);
      if (previous !== null && previous !== me) {
        const released = (await this.redis.exists(this.keys.alive(previous))) === 1 && (await this.requestRelease(previous, clientId));
        if (!released && !clean && (await this.redis.sismember(this.keys.nodes(), previous)) === 1) {
          throw new Error(`the session is held by node ${previous}, which does not let go (no answer, or it has not reloaded its sessions since it lost Redis); refused until it does or is adopted`);
        }
      }
      if (((await this.redis.eval(TAKE_OWNER, 1, owner, previous ?? '', me)) as number) === 0) continue;
      if (previous !== null && previous !== me) {
        await this.redis.srem(this.keys.nodeClients(previous), clientId);
        await this.redis.sadd(this.keys.nodeClients(me), clientId);
        // What this node's stream holds from before was routed to `previous` for this session too.
        this.arrivals.mark([clientId], await streamPosition(this.redis, this.keys.stream(me)));
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
      this.releaseWaiters.set(rid, (released) => {
        clearTimeout(timer);
        resolve(released);
      });
      this.send(node, { t: 'release', cid: clientId, from: this.nodeId, rid });
    });
  }

  /** A control message that arrived on this node's channel. */
  onControl(payload: Buffer): void {
    const control = JSON.parse(payload.toString()) as Control;
    if (control.t === 'released' || control.t === 'not-yet') {
      this.releaseWaiters.get(control.rid)?.(control.t === 'released');
      this.releaseWaiters.delete(control.rid);
      return;
    }
    if (!this.mayRelease(control.cid)) {
      this.log.info({ clientId: control.cid, node: control.from }, 'cluster: not letting go of a session that is not here yet (sessions being reloaded or adopted; the claim is refused, the client retries)');
      this.send(control.from, { t: 'not-yet', rid: control.rid });
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
