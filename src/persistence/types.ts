/**
 * Storage ports: what the broker persists so that nothing it acknowledged is lost across a
 * restart or a crash. Backends implement `Persistence`; `test/conformance/persistence.ts` is the
 * suite every backend must pass.
 */
import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import type { QoS, Will } from '../protocol/types.js';

/** A message body, stored once however many sessions hold it: the broker's Message with a store id. */
export interface StoredMessage extends Omit<Message, 'clusterId'> {
  /** Broker-assigned, unique within one data directory. */
  id: number;
  /** In a cluster: the message's id across nodes (lets a node recognise a copy it already holds). */
  clusterId?: string;
}

/** A retained message (the body is stored with it), with the order in which topics were set. */
export type StoredRetained = Omit<StoredMessage, 'id'> & { seq?: number };

/** One message a session owes its client: queued, or sent and awaiting its acknowledgement. */
export interface StoredDelivery {
  clientId: string;
  /** Order of the delivery within its session. */
  seq: number;
  messageId: number;
  qos: QoS;
  retain: boolean;
  subscriptionIds?: number[];
  shareKey?: string;
  /** 'queued': not sent yet; 'publish': sent, awaiting PUBACK/PUBREC; 'pubrel': PUBREL sent. */
  state: 'queued' | 'publish' | 'pubrel';
  /** The packet id it was sent with (states 'publish' and 'pubrel'). */
  packetId?: number;
}

/** A persistent session's own state. */
export interface StoredSession {
  clientId: string;
  /** Session Expiry Interval in seconds (0xFFFFFFFF: never). */
  expiryInterval: number;
  subscriptions: Subscription[];
  /** When the client went away (ms since the epoch); absent while connected. */
  disconnectedAt?: number;
  /** A will waiting for its delay, and when it is due. */
  pendingWill?: { will: Will; at: number };
  /** Who the client was (user name, attributes), for authorization while it is away. */
  identity?: {
    clientId: string;
    username?: string | undefined;
    remoteAddress?: string | undefined;
    listener: string;
    certificateSubject?: Readonly<Record<string, string>>;
    attributes?: Readonly<Record<string, unknown>>;
  };
}

/** One incoming QoS 2 message id awaiting PUBREL. */
export interface StoredIncomingQos2 {
  clientId: string;
  packetId: number;
}

/** One change to the stored state. Changes are applied in order. */
export type StoreOp =
  | { op: 'putSession'; session: StoredSession }
  | { op: 'deleteSession'; clientId: string }
  | { op: 'putMessage'; message: StoredMessage }
  | { op: 'deleteMessage'; id: number }
  | { op: 'putDelivery'; delivery: StoredDelivery }
  | { op: 'deleteDelivery'; clientId: string; seq: number }
  | { op: 'putIncomingQos2'; clientId: string; packetId: number }
  | { op: 'deleteIncomingQos2'; clientId: string; packetId: number }
  | { op: 'putRetained'; message: StoredRetained }
  | { op: 'deleteRetained'; topic: string }
  | { op: 'putRecord'; record: StoredRecord }
  | { op: 'deleteRecord'; space: string; key: string };

/**
 * A keyed record outside the broker's own state, written in the same commits: the worker hub's
 * client-id owners, wills of connected clients and per-worker inboxes (docs/workers.md).
 */
export interface StoredRecord {
  /** What kind of record ("owner", "will", "inbox"…). */
  space: string;
  key: string;
  value: Buffer;
}

/** Everything stored, as read at start-up. */
export interface StoredState {
  sessions: StoredSession[];
  /** Sorted by client id, then seq. */
  deliveries: StoredDelivery[];
  messages: StoredMessage[];
  incomingQos2: StoredIncomingQos2[];
  retained: StoredRetained[];
  /** Records (`putRecord`), if any were stored; sorted by space, then key. */
  records?: StoredRecord[];
}

/** A storage backend. */
export interface Persistence {
  /** Backend name for logs ("memory", "lmdb"). */
  readonly name: string;
  /** Reads the whole stored state (called once, before any client connects). */
  load(): Promise<StoredState>;
  /**
   * Applies changes in order. The promise resolves once they are durable (for a durable backend:
   * on disk), and resolves in call order. Backends group concurrent calls into few commits.
   */
  apply(ops: readonly StoreOp[]): Promise<void>;
  /** Flushes and releases the store. */
  close(): Promise<void>;
  /**
   * Users, roles, bans and admins managed at runtime (docs/security.md). The built-in stores have it;
   * a store without it gets them kept in memory (lost at a restart).
   */
  readonly access?: AccessStore;
}

/** One ACL rule of a user or role managed at runtime: a topic filter (`%u` / `%c` allowed) and its access. */
export interface StoredAclRule {
  topic: string;
  access: 'read' | 'write' | 'readwrite' | 'deny';
}

/** An MQTT user managed at runtime (REST API, dashboard, `starling ctl`). */
export interface StoredUser {
  username: string;
  /** `$7$…` as in a password file (PBKDF2-SHA512). */
  passwordHash: string;
  roles: string[];
  acl: StoredAclRule[];
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
}

/** A named set of ACL rules that users are given. */
export interface StoredRole {
  name: string;
  acl: StoredAclRule[];
  createdAt: number;
  updatedAt: number;
}

/** A ban: exactly one of client id, user name or address (an IP address or CIDR range). */
export interface StoredBan {
  id: string;
  clientId?: string;
  username?: string;
  address?: string;
  /** ms since the epoch; absent: until deleted. */
  until?: number;
  reason?: string;
  createdAt: number;
  /** Who made it (an admin, "api-token", "loopback"). */
  createdBy: string;
}

/** A user of the dashboard and the REST API. */
export interface StoredAdmin {
  username: string;
  /** `$7$…`, as for MQTT users. */
  passwordHash: string;
  role: 'administrator' | 'viewer';
  createdAt: number;
  updatedAt: number;
}

/** A signed-in admin: a session cookie or a bearer token, known by the SHA-256 of its secret. */
export interface StoredAdminSession {
  /** Hex SHA-256 of the token (the token itself is never stored). */
  id: string;
  username: string;
  kind: 'cookie' | 'bearer';
  createdAt: number;
  expiresAt: number;
}

/** Every kind of access record and its shape. */
export interface AccessRecords {
  user: StoredUser;
  role: StoredRole;
  ban: StoredBan;
  admin: StoredAdmin;
  session: StoredAdminSession;
}

/** A kind of access record. */
export type AccessKind = keyof AccessRecords;

/** Every kind, in the order `load` lists them. */
export const ACCESS_KINDS: readonly AccessKind[] = ['user', 'role', 'ban', 'admin', 'session'];

/** A record put (value given) or deleted (value undefined), by kind and key. */
export type AccessWrite = { [K in AccessKind]: { kind: K; key: string; value: AccessRecords[K] | undefined } }[AccessKind];

/** Which record changed. */
export interface AccessChange {
  kind: AccessKind;
  key: string;
}

/** Every access record, by kind, each as key → record. */
export type AccessSnapshot = { [K in AccessKind]: Map<string, AccessRecords[K]> };

/**
 * The storage port of access control (users, roles, bans, admins and their sessions): every store
 * implements it beside the broker's state. Writes are atomic; `watch` hears every change, made here or
 * (in a cluster) on another node.
 */
export interface AccessStore {
  /** Every record. */
  load(): Promise<AccessSnapshot>;
  /** One record, as stored now. */
  get<K extends AccessKind>(kind: K, key: string): Promise<AccessRecords[K] | undefined>;
  /** Applies every write or none; resolves once durable, after the watchers were told. */
  write(writes: readonly AccessWrite[]): Promise<void>;
  /**
   * Calls `listener` with the records changed by each write (this process's or, in a cluster, another
   * node's), or 'all' when changes may have been missed (a lost connection): then reload everything.
   * Returns a function that stops listening.
   */
  watch(listener: (changes: readonly AccessChange[] | 'all') => void): () => void;
}
