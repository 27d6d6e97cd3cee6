/**
 * The cluster bus of one worker of a group (`ClusterBus`): routing by interest over the group's route
 * table, envelopes for other workers, claims and releases of client ids, wills of connected clients —
 * all carried by the worker's commit frame to the hub, which applies it with the turn's store
 * operations in one transaction (the store is `HubStore`, the hub's store seen from here).
 */
import type { Message } from '../../model/message.js';
import type { StoreOp, StoredState } from '../../persistence/types.js';
import type { QoS, Will } from '../../protocol/types.js';
import { deliverArrivals } from '../arrivals.js';
import { encodeEnvelope } from '../envelope.js';
import { InterestTable } from '../interest-table.js';
import { isValidNodeId } from '../node-id.js';
import { ClusterIds, MAX_PENDING_BYTES, NodeQueues, queueForNodes } from '../outbound.js';
import type { ClusterBus, ClusterHandler, ClusterStats } from '../types.js';
import { decodeHubFrame, encodeFrame, type CommitFrame, type HubFrame, type RouteOp, type WorkerFrame, type WorkerLoad } from './frames.js';
import type { AccessRequest } from './hub-access.js';
import { HubStore } from './hub-store.js';
import type { FrameLink } from './link.js';

const NO_GROUPS: readonly string[] = [];
const EMPTY_SET: ReadonlySet<string> = new Set();

/** The logging the bus needs (pino-compatible). */
export interface WorkerBusLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Answers a report the hub asks for (a view of this worker, for a view of the whole group). */
export type Reporter = (what: string, arg: unknown) => unknown;

type Pending = { resolve: (frame: HubFrame) => void; reject: (error: Error) => void };

/** One worker's side of the group. */
export class WorkerBus implements ClusterBus {
  readonly stats: ClusterStats = { sent: 0, received: 0, droppedQos0: 0 };
  /** The group's store, through the hub. */
  readonly store: HubStore;
  /** Connections and sessions held by the other workers (as last heard): limits hold for the whole group. */
  othersLoad: WorkerLoad = { connections: 0, sessions: 0 };
  private readonly table = new InterestTable();
  private readonly own = new Set<string>();
  private routes: RouteOp[] = [];
  private readonly out = new NodeQueues();
  private readonly out0 = new NodeQueues();
  private acks: number[] = [];
  private online: [string, Will | null][] = [];
  private offline: [string, boolean][] = [];
  private readonly ids: ClusterIds;
  private handler: ClusterHandler | undefined;
  private reporter: Reporter | undefined;
  private nextRid = 1;
  private nextCommit = 1;
  private readonly requests = new Map<number, Pending>();
  private readonly commits = new Map<number, { bytes: number; resolve: () => void; reject: (error: Error) => void }>();
  private inflightBytes = 0;
  private started = false;
  private connected = true;

  constructor(
    readonly nodeId: string,
    private readonly link: FrameLink,
    private readonly log: WorkerBusLogger,
  ) {
    if (!isValidNodeId(nodeId)) throw new Error(`invalid node id "${nodeId}": use 1-128 of A-Z a-z 0-9 . _ : -`);
    this.ids = new ClusterIds(nodeId);
    this.store = new HubStore(this);
    link.onFrame((data) => this.receive(data));
    link.onClose(() => this.lost());
  }

  get ready(): boolean {
    return this.started && this.connected;
  }

  /** Answers the hub's report requests (views of the whole group gathered from every worker). */
  setReporter(reporter: Reporter): void {
    this.reporter = reporter;
  }

  /** A report from every running worker, by node id. */
  async gather(what: string, arg: unknown): Promise<[string, unknown][]> {
    const frame = await this.request((rid) => ({ t: 'gather', rid, what, arg }));
    return frame.t === 'gathered' ? frame.values : [];
  }

  async start(handler: ClusterHandler): Promise<void> {
    this.handler = handler;
    this.routes = []; // the start frame carries the whole interest
    const frame = await this.request((rid) => ({ t: 'start', rid, routes: [...this.own] }));
    if (frame.t !== 'started') return;
    for (const [node, keys] of frame.routes) this.table.replaceNode(node, keys);
    this.started = true;
    // Retained messages set by other workers since this one loaded the store.
    handler.replaceRetained(frame.retained);
    // Clients connected to this worker's previous process when it ended: their wills are due.
    for (const [clientId, will] of frame.wills) handler.publishOrphanWill(clientId, will);
  }

  /** Tells the hub this worker serves clients (its listeners are open). */
  serving(): void {
    if (this.connected) this.link.send(encodeFrame({ t: 'ready' }));
  }

  close(): Promise<void> {
    this.started = false;
    if (this.connected) this.link.send(encodeFrame({ t: 'leave' }));
    return Promise.resolve();
  }

  // ---- routes and messages ----

  addInterest(key: string): void {
    if (this.own.has(key)) return;
    this.own.add(key);
    this.table.add(this.nodeId, key);
    this.routes.push(['+', key]);
    this.handler?.requestCommit();
  }

  removeInterest(key: string): void {
    if (!this.own.delete(key)) return;
    this.table.remove(this.nodeId, key);
    this.routes.push(['-', key]);
    this.handler?.requestCommit();
  }

  publish(message: Message): ReadonlySet<string> | undefined {
    const route = this.table.match(message.topic);
    if (route.nodes.length === 0 && route.groups.size === 0) return EMPTY_SET;
    const me = this.nodeId;
    if (message.qos === 0 && !this.mayQueueQos0()) {
      for (const node of route.nodes) if (node !== me) this.stats.droppedQos0++;
      return undefined;
    }
    const before = this.out.size + this.out0.size;
    message.clusterId ??= this.ids.next();
    const served = queueForNodes(message, route, this.table, me, message.qos === 0 ? this.out0 : this.out);
    // Only traffic that leaves this worker joins (and so waits for) the next commit.
    if (this.out.size + this.out0.size !== before) this.handler?.requestCommit();
    return served;
  }

  wantedElsewhere(topic: string): boolean {
    return this.table.wantedBeyond(topic, this.nodeId);
  }

  forward(node: string, clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void {
    if (qos === 0 && !this.mayQueueQos0()) {
      this.stats.droppedQos0++;
      return;
    }
    message.clusterId ??= this.ids.next();
    (qos === 0 ? this.out0 : this.out).push(node, encodeEnvelope(message, NO_GROUPS, { clientId, qos, retain, subscriptionIds }));
    this.handler?.requestCommit();
  }

  private mayQueueQos0(): boolean {
    return this.connected && this.out.bytes + this.out0.bytes + this.inflightBytes <= MAX_PENDING_BYTES;
  }

  // ---- client ids ----

  async claimSession(clientId: string, load: boolean): Promise<StoredState | undefined> {
    if (!this.connected) throw new Error('workers: the primary process is gone');
    const frame = await this.request((rid) => ({ t: 'claim', rid, clientId, load }));
    if (frame.t !== 'claimed') return undefined;
    if (frame.error !== undefined) throw new Error(frame.error);
    return frame.state;
  }

  clientOnline(clientId: string, will: Will | undefined): void {
    this.online.push([clientId, will ?? null]);
    this.handler?.requestCommit();
  }

  clientOffline(clientId: string, persistent: boolean): void {
    this.offline.push([clientId, persistent]);
    this.handler?.requestCommit();
  }

  // ---- the store's side: one frame per commit ----

  /** The stored sessions of this worker and every retained message (the store's `load`). */
  async load(): Promise<StoredState> {
    const frame = await this.request((rid) => ({ t: 'load', rid }));
    if (frame.t !== 'loaded') throw new Error('workers: no state from the hub');
    return frame.state;
  }

  /** Sends one turn (the store's `ops` and this bus's writes since the last commit); resolves once the hub made it durable. */
  commit(ops: readonly StoreOp[]): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('workers: the primary process is gone; nothing can be committed'));
    const bytes = this.out.bytes + this.out0.bytes;
    this.stats.sent += this.out.size + this.out0.size;
    const frame: CommitFrame = {
      t: 'commit',
      id: this.nextCommit++,
      ops: ops as StoreOp[],
      out: [...this.out.take()],
      out0: [...this.out0.take()],
      acks: this.acks,
      routes: this.routes,
      online: this.online,
      offline: this.offline,
    };
    this.acks = [];
    this.routes = [];
    this.online = [];
    this.offline = [];
    this.inflightBytes += bytes;
    return new Promise<void>((resolve, reject) => {
      this.commits.set(frame.id, { bytes, resolve, reject });
      this.link.send(encodeFrame(frame));
    });
  }

  /** A request to the hub's access store (the HubStore's `access`). */
  readonly access = async (request: AccessRequest): Promise<unknown> => {
    const frame = await this.request((rid) => ({ t: 'access', rid, request }));
    if (frame.t !== 'accessed') throw new Error('workers: no answer from the access store');
    if (frame.error !== undefined) throw new Error(`workers: access store: ${frame.error}`);
    return frame.value;
  };

  // ---- what arrives ----

  private request(make: (rid: number) => WorkerFrame): Promise<HubFrame> {
    if (!this.connected) return Promise.reject(new Error('workers: the primary process is gone'));
    const rid = this.nextRid++;
    return new Promise<HubFrame>((resolve, reject) => {
      this.requests.set(rid, { resolve, reject });
      this.link.send(encodeFrame(make(rid)));
    });
  }

  private answer(rid: number, frame: HubFrame): void {
    const pending = this.requests.get(rid);
    this.requests.delete(rid);
    pending?.resolve(frame);
  }

  private receive(data: Uint8Array): void {
    let frame: HubFrame;
    try {
      frame = decodeHubFrame(data);
    } catch (error) {
      this.log.error({ err: error }, 'workers: undecodable frame from the hub dropped');
      return;
    }
    switch (frame.t) {
      case 'committed': {
        const commit = this.commits.get(frame.id);
        if (commit === undefined) return;
        this.commits.delete(frame.id);
        this.inflightBytes -= commit.bytes;
        if (frame.error === undefined) commit.resolve();
        else commit.reject(new Error(`workers: commit failed in the hub: ${frame.error}`));
        return;
      }
      case 'loaded':
      case 'started':
      case 'claimed':
      case 'gathered':
      case 'accessed':
        this.answer(frame.rid, frame);
        return;
      case 'accessChanged':
        this.store.access.changed(frame.changes);
        return;
      case 'deliver':
        this.deliver(frame.data, frame.seq);
        return;
      case 'routes':
        if (frame.reset === true) this.table.removeNode(frame.node);
        for (const [op, key] of frame.changes) {
          if (op === '+') this.table.add(frame.node, key);
          else this.table.remove(frame.node, key);
        }
        return;
      case 'retained':
        for (const change of frame.changes) this.handler?.retainedFromCluster(change);
        return;
      case 'release':
        this.release(frame.rid, frame.clientId, frame.to);
        return;
      case 'report':
        this.report(frame.rid, frame.what, frame.arg);
        return;
      case 'load':
        this.othersLoad = frame.others;
        return;
    }
  }

  private deliver(data: Buffer, seq: number | undefined): void {
    const handler = this.handler;
    if (handler === undefined) return;
    try {
      deliverArrivals(handler, data, this.stats);
    } catch (error) {
      this.log.error({ err: error }, 'workers: undecodable envelope from another worker dropped');
    }
    if (seq !== undefined) {
      // Acknowledged in the commit that holds the deliveries it caused (exactly once across a crash).
      this.acks.push(seq);
      handler.requestCommit();
    }
  }

  private release(rid: number, clientId: string, to: string): void {
    const answer = (): void => {
      if (this.connected) this.link.send(encodeFrame({ t: 'released', rid }));
    };
    if (this.handler === undefined) return answer();
    this.handler.releaseSession(clientId, to).then(answer, (error: unknown) => {
      this.log.error({ clientId, err: error }, 'workers: letting go of a session failed');
      answer();
    });
  }

  private report(rid: number, what: string, arg: unknown): void {
    const send = (value: unknown): void => {
      if (this.connected) this.link.send(encodeFrame({ t: 'reported', rid, value }));
    };
    try {
      Promise.resolve(this.reporter?.(what, arg)).then(send, () => send(undefined));
    } catch {
      send(undefined);
    }
  }

  /** The primary is gone: nothing can be committed any more; what waits fails. */
  private lost(): void {
    if (!this.connected) return;
    this.connected = false;
    const error = new Error('workers: the primary process is gone');
    for (const pending of this.requests.values()) pending.reject(error);
    this.requests.clear();
    for (const commit of this.commits.values()) commit.reject(error);
    this.commits.clear();
  }
}
