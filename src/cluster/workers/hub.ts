/**
 * The hub of a worker group, in the primary process: the one owner of the store, of every worker's
 * interest, of client-id ownership and of the durable inboxes. Each worker commit is applied in one
 * store transaction; what it sends other workers is delivered once that is durable (QoS 0 at once).
 * docs/workers.md describes the design and its guarantees.
 */
import { MemoryAccessStore } from '../../persistence/memory-access.js';
import type { AccessStore, Persistence, StoreOp, StoredState } from '../../persistence/types.js';
import { forEachEnvelope } from '../envelope.js';
import { answerAccess } from './hub-access.js';
import { HubClaims } from './hub-claims.js';
import { HubState } from './hub-state.js';
import { decodeWorkerFrame, encodeFrame, type CommitFrame, type HubFrame, type RetainedChange, type WorkerFrame, type WorkerLoad } from './frames.js';
import type { FrameLink } from './link.js';

/** The logging the hub needs (pino-compatible). */
export interface HubLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of `Hub.open`. */
export interface HubOptions {
  store: Persistence;
  /** The node ids of the group's workers (w1..wN): sessions held by no one of them are shared out. */
  nodes: readonly string[];
  logger: HubLogger;
  /** How long a claim waits for the worker holding the client id (default 10 000 ms; a dead one must restart first). */
  claimTimeoutMs?: number;
  /** How long a gather waits for the workers' reports (default 2000 ms). */
  gatherTimeoutMs?: number;
}

/** Counters of the hub, for the group's metrics. */
export interface HubStats {
  commits: number;
  /** Envelope batches put in inboxes. */
  inboxed: number;
  /** QoS 0 batches dropped because their worker was down. */
  droppedQos0: number;
}

/** A worker as the hub knows it. */
interface Peer {
  node: string;
  link: FrameLink | undefined;
  /** True once its bus started (it answers releases, takes deliveries). */
  started: boolean;
  pid: number | undefined;
  routes: Set<string>;
}

/** The primary's side of every worker. */
export class Hub {
  readonly stats: HubStats = { commits: 0, inboxed: 0, droppedQos0: 0 };
  /** Called each time a worker is ready (its listeners are open). */
  onServing: ((node: string) => void) | undefined;
  private readonly peers = new Map<string, Peer>();
  private readonly claims: HubClaims;
  private nextRid = 1;
  private readonly gathers = new Map<number, { values: [string, unknown][]; waiting: Set<string>; done: () => void }>();
  /** Inbox entries whose commit is not durable yet (sent once it is). */
  private readonly undurable = new Set<number>();
  private loadScheduled = false;
  private closing = false;
  /** The group's access records: the store's (a store without its own keeps them in memory). */
  private readonly access: AccessStore;
  private readonly unwatchAccess: () => void;

  private constructor(
    private readonly store: Persistence,
    readonly state: HubState,
    private readonly log: HubLogger,
    private readonly options: HubOptions,
  ) {
    for (const node of options.nodes) this.peer(node);
    this.access = store.access ?? new MemoryAccessStore();
    // Every change is told to every worker, the writer's included, before the write is answered.
    this.unwatchAccess = this.access.watch((changes) => {
      for (const peer of this.peers.values()) this.send(peer.node, { t: 'accessChanged', changes: changes === 'all' ? 'all' : [...changes] });
    });
    this.claims = new HubClaims(state, {
      isStarted: (node) => this.peers.get(node)?.started === true,
      send: (node, frame) => this.send(node, frame),
      commit: (ops) => this.store.apply(ops),
      log: options.logger,
      timeoutMs: options.claimTimeoutMs ?? 10_000,
    });
  }

  /** Loads the store, shares out sessions nobody in `nodes` holds, and drops bodies nothing refers to. */
  static async open(options: HubOptions): Promise<Hub> {
    const loaded = await options.store.load();
    const { hub: state, cleanup } = HubState.fromStored(loaded);
    const nodes = new Set(options.nodes);
    const unowned = state.unowned(nodes);
    // Spread evenly and deterministically: a session's subscriptions must be someone's interest.
    unowned.forEach((clientId, i) => state.setOwner(clientId, options.nodes[i % options.nodes.length]!, cleanup));
    const dropped = state.dropInboxes(nodes, cleanup);
    if (dropped > 0) options.logger.warn({ entries: dropped }, 'workers: messages waiting for workers this group no longer has were dropped (fewer workers than before)');
    if (cleanup.length > 0) await options.store.apply(cleanup);
    if (unowned.length > 0) options.logger.info({ sessions: unowned.length }, 'workers: stored sessions shared out among the workers');
    return new Hub(options.store, state, options.logger, options);
  }

  /** The worker `node` is reachable through `link` (a new process for it, `pid`). */
  attach(node: string, link: FrameLink, pid?: number): void {
    const peer = this.peer(node);
    peer.link = link;
    peer.pid = pid;
    peer.started = false;
    link.onFrame((data) => {
      if (peer.link !== link) return;
      let frame: WorkerFrame;
      try {
        frame = decodeWorkerFrame(data);
      } catch (error) {
        this.log.error({ node, err: error }, 'workers: undecodable frame from a worker dropped');
        return;
      }
      this.receive(peer, frame);
    });
    link.onClose(() => {
      if (peer.link === link) this.down(peer);
    });
  }

  /** The worker's process ended: its clients are gone; what it owns waits for its restart. */
  down(peer: Peer | string): void {
    const p = typeof peer === 'string' ? this.peers.get(peer) : peer;
    if (p === undefined || p.link === undefined) return;
    p.link = undefined;
    p.started = false;
    this.claims.down(p.node);
    for (const [rid, gather] of this.gathers) if (gather.waiting.delete(p.node) && gather.waiting.size === 0) this.finishGather(rid);
    this.scheduleLoad();
  }

  /** Load of every worker (connections, sessions), for the per-worker view. */
  loads(): [string, WorkerLoad & { up: boolean; pid: number | undefined }][] {
    return [...this.peers.values()].map((p) => [p.node, this.loadOf(p)]);
  }

  private loadOf(peer: Peer): WorkerLoad & { up: boolean; pid: number | undefined } {
    return { connections: this.claims.connectedTo(peer.node), sessions: this.claims.heldBy(peer.node), up: peer.started, pid: peer.pid };
  }

  /** Stops taking frames; the store is closed by its owner. */
  close(): void {
    this.closing = true;
    this.unwatchAccess();
  }

  private peer(node: string): Peer {
    let peer = this.peers.get(node);
    if (peer === undefined) this.peers.set(node, (peer = { node, link: undefined, started: false, pid: undefined, routes: new Set() }));
    return peer;
  }

  private send(node: string, frame: HubFrame): boolean {
    const link = this.peers.get(node)?.link;
    if (link === undefined) return false;
    link.send(encodeFrame(frame));
    return true;
  }

  private receive(peer: Peer, frame: WorkerFrame): void {
    if (this.closing && frame.t !== 'commit' && frame.t !== 'released') return;
    switch (frame.t) {
      case 'commit':
        this.commit(peer, frame);
        break;
      case 'load':
        this.load(peer, frame.rid);
        break;
      case 'start':
        this.start(peer, frame.rid, frame.routes);
        break;
      case 'claim':
        this.scheduleLoad();
        this.claims.claim(peer.node, frame.clientId, frame.load).then(
          (state) => this.send(peer.node, state === undefined ? { t: 'claimed', rid: frame.rid } : { t: 'claimed', rid: frame.rid, state }),
          (error: unknown) => this.send(peer.node, { t: 'claimed', rid: frame.rid, error: error instanceof Error ? error.message : String(error) }),
        );
        break;
      case 'released':
        this.claims.released(frame.rid);
        break;
      case 'gather':
        this.gather(peer.node, frame.rid, frame.what, frame.arg);
        break;
      case 'reported':
        this.reported(peer.node, frame.rid, frame.value);
        break;
      case 'access':
        answerAccess(this.access, frame.request).then(
          (value) => this.send(peer.node, { t: 'accessed', rid: frame.rid, value }),
          (error: unknown) => this.send(peer.node, { t: 'accessed', rid: frame.rid, error: error instanceof Error ? error.message : String(error) }),
        );
        break;
      case 'ready':
        this.onServing?.(peer.node);
        break;
      case 'leave':
        peer.started = false;
        break;
    }
  }

  /** The sessions `peer` holds and the retained messages (its process starts). */
  private load(peer: Peer, rid: number): void {
    const previous = this.state.resetIds(peer.node);
    this.claims.restarted(peer.node);
    const state: StoredState = this.state.stateFor(peer.node, this.state.ownedBy(peer.node));
    state.retained = this.state.retained();
    const cleanup: StoreOp[] = [];
    this.state.forgetHolds(previous, cleanup);
    const answer = (): void => void this.send(peer.node, { t: 'loaded', rid, state });
    if (cleanup.length === 0) answer();
    else this.store.apply(cleanup).then(answer, (error: unknown) => this.log.error({ node: peer.node, err: error }, 'workers: store cleanup failed'));
  }

  /** `peer`'s bus starts: its interest replaces what the hub had, it gets the routes, its orphan wills, its inbox. */
  private start(peer: Peer, rid: number, routes: readonly string[]): void {
    peer.routes = new Set(routes);
    this.broadcast(peer.node, { t: 'routes', node: peer.node, changes: routes.map((key) => ['+', key] as ['+', string]), reset: true });
    const table: [string, string[]][] = [];
    for (const other of this.peers.values()) if (other !== peer && other.routes.size > 0) table.push([other.node, [...other.routes]]);
    const ops: StoreOp[] = [];
    const wills = this.state.takeWills(peer.node, ops);
    const go = (): void => {
      this.send(peer.node, { t: 'started', rid, routes: table, wills, retained: this.state.retained() });
      for (const entry of this.state.inbox(peer.node)) if (!this.undurable.has(entry.seq)) this.send(peer.node, { t: 'deliver', data: entry.data, seq: entry.seq });
      peer.started = true;
      this.claims.started(peer.node);
      this.scheduleLoad();
      this.log.info({ node: peer.node, pid: peer.pid, wills: wills.length }, `workers: worker ${peer.node} joined`);
    };
    if (ops.length === 0) go();
    else this.store.apply(ops).then(go, (error: unknown) => this.log.error({ node: peer.node, err: error }, 'workers: taking the wills of a worker failed'));
  }

  /** One turn of `peer`: one store transaction, then its envelopes delivered and its answer sent. */
  private commit(peer: Peer, frame: CommitFrame): void {
    const node = peer.node;
    const state = this.state;
    const ops: StoreOp[] = [];
    this.stats.commits++;
    for (const [clientId, will] of frame.online) if (will !== null) state.setWill(node, clientId, will, ops);
    state.applyOps(node, frame.ops, ops);
    for (const op of frame.ops) if (op.op === 'deleteSession') this.claims.sessionDeleted(op.clientId, node);
    state.ackInbox(node, frame.acks, ops);
    for (const [clientId, persistent] of frame.offline) {
      state.setWill(node, clientId, undefined, ops);
      this.claims.offline(clientId, node, persistent, ops);
    }
    if (frame.routes.length > 0) {
      for (const [op, key] of frame.routes) {
        if (op === '+') peer.routes.add(key);
        else peer.routes.delete(key);
      }
      // Announced before the commit is answered: a SUBACK on that worker follows the other workers' knowing.
      this.broadcast(node, { t: 'routes', node, changes: frame.routes });
    }
    for (const [target, batches] of frame.out0) {
      for (const data of batches) if (!this.sendDelivery(target, data)) this.stats.droppedQos0 += countEnvelopes(data);
    }
    const entries: [string, { seq: number; data: Buffer }][] = [];
    for (const [target, batches] of frame.out) {
      for (const data of batches) {
        const entry = state.addInbox(target, data, ops);
        this.undurable.add(entry.seq);
        entries.push([target, entry]);
      }
    }
    this.stats.inboxed += entries.length;
    if (frame.offline.length > 0) this.scheduleLoad();
    const retained = retainedChanges(frame.ops);
    this.store.apply(ops).then(
      () => {
        for (const [target, entry] of entries) {
          this.undurable.delete(entry.seq);
          if (this.peers.get(target)?.started === true) this.send(target, { t: 'deliver', data: entry.data, seq: entry.seq });
        }
        if (retained.length > 0) this.broadcast(node, { t: 'retained', changes: retained });
        this.send(node, { t: 'committed', id: frame.id });
      },
      (error: unknown) => {
        for (const [, entry] of entries) this.undurable.delete(entry.seq);
        this.log.error({ node, err: error }, 'workers: a commit failed in the store');
        this.send(node, { t: 'committed', id: frame.id, error: error instanceof Error ? error.message : String(error) });
      },
    );
  }

  private sendDelivery(node: string, data: Buffer): boolean {
    return this.peers.get(node)?.started === true && this.send(node, { t: 'deliver', data });
  }

  private broadcast(from: string, frame: HubFrame): void {
    const data = encodeFrame(frame);
    for (const peer of this.peers.values()) if (peer.node !== from) peer.link?.send(data);
  }

  /** Tells each worker the load of the others (once per turn of the hub, when it changed). */
  private scheduleLoad(): void {
    if (this.loadScheduled) return;
    this.loadScheduled = true;
    setImmediate(() => {
      this.loadScheduled = false;
      const loads = [...this.peers.values()].map((peer) => [peer, this.loadOf(peer)] as const);
      const total = { connections: 0, sessions: 0 };
      for (const [, load] of loads) {
        total.connections += load.connections;
        total.sessions += load.sessions;
      }
      for (const [peer, load] of loads) {
        if (peer.started) this.send(peer.node, { t: 'load', others: { connections: total.connections - load.connections, sessions: total.sessions - load.sessions } });
      }
    });
  }

  // ---- views of the whole group ----

  private gather(from: string, rid: number, what: string, arg: unknown): void {
    const hubRid = this.nextRid++;
    const waiting = new Set<string>();
    const values: [string, unknown][] = [];
    for (const peer of this.peers.values()) if (peer.started) waiting.add(peer.node);
    const timer = setTimeout(() => this.finishGather(hubRid), this.options.gatherTimeoutMs ?? 2000);
    this.gathers.set(hubRid, {
      values,
      waiting,
      done: () => {
        clearTimeout(timer);
        this.send(from, { t: 'gathered', rid, values });
      },
    });
    if (waiting.size === 0) this.finishGather(hubRid);
    for (const node of waiting) this.send(node, { t: 'report', rid: hubRid, what, arg });
  }

  private reported(node: string, rid: number, value: unknown): void {
    const gather = this.gathers.get(rid);
    if (gather === undefined || !gather.waiting.delete(node)) return;
    gather.values.push([node, value]);
    if (gather.waiting.size === 0) this.finishGather(rid);
  }

  private finishGather(rid: number): void {
    const gather = this.gathers.get(rid);
    if (gather === undefined) return;
    this.gathers.delete(rid);
    gather.done();
  }
}

/** The retained changes among a commit's operations, as the other workers apply them. */
function retainedChanges(ops: readonly StoreOp[]): RetainedChange[] {
  const out: RetainedChange[] = [];
  for (const op of ops) {
    if (op.op === 'putRetained') out.push(op.message);
    else if (op.op === 'deleteRetained') out.push({ topic: op.topic, cleared: true });
  }
  return out;
}

function countEnvelopes(data: Buffer): number {
  let count = 0;
  forEachEnvelope(data, () => count++);
  return count;
}
