import type { ClusterBus } from '../cluster/types.js';
import type { Message } from '../model/message.js';
import type { CloseReason, Connection } from './connection.js';
import type { Hooks } from './hooks.js';
import type { Journal } from './journal.js';
import type { Logger } from './logger.js';
import type { BrokerOptions } from './options.js';
import type { RetainedMessages } from './retained.js';
import type { Router } from './router.js';
import type { SessionRegistry } from './sessions.js';
import type { Session } from './session.js';
import type { BrokerStats } from './stats.js';
import type { WireCache } from './wire-cache.js';

/** What connections and packet handlers see of the broker. */
export interface BrokerContext {
  readonly options: BrokerOptions;
  readonly logger: Logger;
  /** Whether debug records are wanted (checked before building them on hot paths). */
  readonly debugEnabled: boolean;
  readonly stats: BrokerStats;
  readonly router: Router;
  readonly sessions: SessionRegistry;
  readonly retained: RetainedMessages;
  readonly wire: WireCache;
  /** Changes to persist this turn; undefined when no store is configured. */
  readonly journal: Journal | undefined;
  /** The store commit that changes made now will be part of. */
  readonly pendingCommitGen: number;
  /** The last store commit known durable. */
  readonly committedGen: number;
  /** Asks for `connection.releaseAcks` after each commit until it has none waiting. */
  waitForCommit(connection: Connection): void;
  /** The cluster this broker is a node of; undefined on a single node. */
  readonly cluster: ClusterBus | undefined;
  /**
   * In a cluster: the node holding `clientId` lets go and its stored session is loaded here. `clean`:
   * the connection starts a new session that ends with it (it may be served while Redis is away).
   */
  claimSession(clientId: string, clean: boolean): Promise<void>;
  /** Plugins: authentication, authorization and observers. */
  readonly hooks: Hooks;
  /** Connections that completed CONNECT, by client id. */
  readonly online: Map<string, Connection>;
  /** Connections that completed CONNECT, counted per listener name. */
  readonly onlinePerListener: Map<string, number>;
  /** Asks for `connection.flush()` at the end of this event-loop turn. */
  scheduleFlush(connection: Connection): void;
  /** Stores (if retained) and routes a message; returns how many sessions it went to. */
  dispatch(message: Message): number;
  /** Ends a session now (Clean Start over it, or expiry): its pending will is published, its state dropped. */
  sessionEnded(session: Session): void;
  /** Reports an observer plugin's error. */
  readonly pluginFailed: (plugin: string, error: unknown) => void;
  /** Cancels a session's delayed will (the session resumed in time) [MQTT-3.1.3-9]. */
  cancelWill(session: Session): void;
  /** Called once when a connection closes, for session and will handling. */
  connectionClosed(connection: Connection, reason: CloseReason, wasConnected: boolean): void;
}
