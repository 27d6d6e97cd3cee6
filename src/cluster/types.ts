/**
 * The cluster port: how one broker process (a node) shares routing, sessions and retained messages
 * with other nodes. The broker core sees only these types; `redis.ts` implements them on Redis and
 * `local.ts` is the single-node implementation (nothing to share).
 */
import type { Message } from '../model/message.js';
import type { Persistence, StoredRetained, StoredState } from '../persistence/types.js';
import type { QoS, Will } from '../protocol/types.js';

/** What the broker offers the cluster: called by the bus when something arrives from another node. */
export interface ClusterHandler {
  /**
   * A message published on another node, for this node's subscribers. `groups` lists the shared
   * subscription groups (keys as `$share/{group}/{filter}`) this node was picked to serve; other
   * matching groups are served elsewhere. `only`: deliver to these client ids' sessions only (a
   * dead node's stream replayed by its adopter: the adopter's own subscribers had their copies).
   * `except`: not to these client ids' sessions (they arrived here after the message was routed:
   * the node they came from delivered their copy).
   */
  deliverFromCluster(message: Message, groups: readonly string[], only?: ReadonlySet<string>, except?: Pick<ReadonlySet<string>, 'has'>): void;
  /** A retained message was set (or cleared) on another node. */
  retainedFromCluster(message: StoredRetained | { topic: string; cleared: true }): void;
  /** Every retained message of the cluster (after a reconnection to Redis): replaces the local copy. */
  replaceRetained(messages: readonly StoredRetained[]): void;
  /**
   * Another node claims a client id: close its connection here (Session taken over) and let go of
   * its session without deleting the stored state; resolves once everything is in the store.
   */
  releaseSession(clientId: string, toNode: string): Promise<void>;
  /** A delivery forwarded for one session (it moved here from the node that sent it). */
  deliverTargeted(clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void;
  /** Sessions (with their deliveries) to hold from now on: a dead node's, adopted by this one. */
  adoptSessions(state: StoredState): void;
  /** Publishes a will of a client whose node died. */
  publishOrphanWill(clientId: string, will: Will): void;
  /** Marks that the next commit has cluster work to do (the bus's writes join the store's transaction). */
  requestCommit(): void;
  /** Resolves once everything changed so far is committed. */
  settle(): Promise<void>;
  /** This node was declared dead by the others while it was cut off: drop every client and session. */
  fenced(): void;
}

/** Counters of a node's cluster traffic. */
export interface ClusterStats {
  /** Messages sent to other nodes (one per target node). */
  sent: number;
  /** Messages received from other nodes. */
  received: number;
  /** QoS 0 messages for other nodes dropped while the shared state (Redis) was unavailable. */
  droppedQos0: number;
}

/** The cluster bus port. */
export interface ClusterBus {
  /** This node's id. */
  readonly nodeId: string;
  readonly stats: ClusterStats;
  /** False while the bus cannot reach the shared state (Redis down): /readyz reports not-ready. */
  readonly ready: boolean;
  /** The store this node must use (the cluster's shared one), if the bus provides one. */
  readonly store: Persistence | undefined;
  /**
   * Connections and sessions held by the other nodes, when the limits (`maxConnections`,
   * `maxSessions`) hold for the whole cluster rather than per node (a worker group); absent: per node.
   */
  readonly othersLoad?: { readonly connections: number; readonly sessions: number };
  /** Connects and registers the node; `handler` receives what other nodes send. */
  start(handler: ClusterHandler): Promise<void>;
  /** A local subscription filter (or `$share/{group}/{filter}`) gained its first subscriber. */
  addInterest(key: string): void;
  /** A local subscription filter lost its last subscriber. */
  removeInterest(key: string): void;
  /**
   * A message published on this node (by a client, a will or the API): sends it to the other nodes
   * that want it, and says which shared groups this node serves for it.
   */
  publish(message: Message): ReadonlySet<string> | undefined;
  /** Another node has a subscription matching `topic` (MQTT 5's 0x10, No matching subscribers, is for a message no node wanted). */
  wantedElsewhere(topic: string): boolean;
  /**
   * Claims a client id for a connection on this node: the node that held it lets go first (closing
   * that connection). With `load`, resolves with the client's stored session state (if any).
   * `clean`: the connection starts a session that ends with it (nothing stored to hand over).
   */
  claimSession(clientId: string, load: boolean, clean?: boolean): Promise<StoredState | undefined>;
  /**
   * Sends a delivery to one session on `node` (it moved there; messages still routed here during the
   * move follow it). Duplicates are recognised there by `message.clusterId`, set here if missing.
   */
  forward(node: string, clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void;
  /** A client is connected here with a will: stored so another node publishes it if this one dies. */
  clientOnline(clientId: string, will: Will | undefined): void;
  /**
   * A client connected here went away; `persistent`: its session stays on this node, or its client
   * id stays claimed (a connection here took it over), so the client id is not given up.
   */
  clientOffline(clientId: string, persistent: boolean): void;
  /** Leaves the cluster (routes removed, sessions stay owned by this node id for its restart). */
  close(): Promise<void>;
}
