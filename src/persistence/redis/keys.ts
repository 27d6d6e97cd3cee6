/**
 * The names of every key and channel a Starling cluster keeps in Redis, under one prefix: the store
 * and the bus use the same data, so the layout is written down once, here.
 */

/** Key and channel names under one prefix (several clusters can share one Redis). */
export class RedisKeys {
  /** `prefix`: of every key and channel (default "starling"). */
  constructor(readonly prefix = 'starling') {}

  /** `{prefix}:{parts joined by ":"}`. */
  key(...parts: string[]): string {
    return `${this.prefix}:${parts.join(':')}`;
  }

  // ---- the store (one client's persistent session) ----

  /** String: a persistent session's own record. */
  session(clientId: string): string {
    return this.key('session', clientId);
  }

  /** Hash seq → delivery with its message body: what a session owes its client. */
  deliveries(clientId: string): string {
    return this.key('dlv', clientId);
  }

  /** Set of incoming QoS 2 packet ids awaiting PUBREL. */
  qos2(clientId: string): string {
    return this.key('qos2', clientId);
  }

  /** Hash topic → retained message, shared by every node. */
  retained(): string {
    return this.key('retained');
  }

  /** Hash `{space}\0{key}` → value: the records of the store (StoreOp putRecord). */
  records(): string {
    return this.key('records');
  }

  /** String: the node holding a client id (claimed with SET … GET). */
  owner(clientId: string): string {
    return this.key('owner', clientId);
  }

  /** Set: the client ids of the persistent sessions `node` holds. */
  nodeClients(node: string): string {
    return this.key('node', node, 'clients');
  }

  // ---- access control (users, roles, bans, admins, sessions) ----

  /** Hash key → JSON record of one kind of access record. */
  access(kind: string): string {
    return this.key('access', kind);
  }

  /** Pub/sub channel of access changes (which records a node changed). */
  accessChannel(): string {
    return this.key('ch', 'access');
  }

  // ---- the bus ----

  /** Hash client id → will of a client connected to `node` (published by whoever adopts it). */
  nodeWills(node: string): string {
    return this.key('node', node, 'wills');
  }

  /** Set of every registered node id. */
  nodes(): string {
    return this.key('nodes');
  }

  /** A node's heartbeat (expires unless refreshed). */
  alive(node: string): string {
    return this.key('alive', node);
  }

  /** Tombstone of a node declared dead: names the node that adopted it. */
  dead(node: string): string {
    return this.key('dead', node);
  }

  /** Lock of the node adopting `node` (one adopter per dead node). */
  adopt(node: string): string {
    return this.key('adopt', node);
  }

  /** Set of the interest keys (filters, `$share/{group}/{filter}`) of `node`. */
  routes(node: string): string {
    return this.key('routes', node);
  }

  /** Stream of QoS 1/2 envelopes for `node` (one consumer group). */
  stream(node: string): string {
    return this.key('stream', node);
  }

  /** Pub/sub channel of `node`: QoS 0 envelopes and control messages. */
  nodeChannel(node: string): string {
    return this.key('ch', node);
  }

  /** Pub/sub channel of route changes. */
  routesChannel(): string {
    return this.key('ch', 'routes');
  }

  /** Pub/sub channel of retained changes. */
  retainedChannel(): string {
    return this.key('ch', 'retained');
  }
}
