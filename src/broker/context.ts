/** The parts of a broker that connections and packet handlers work with, each a small object with named methods. */
import type { ClientRegistry } from './clients.js';
import type { ClusterLink } from './cluster-link.js';
import type { Hooks } from './hooks.js';
import type { Logger } from './logger.js';
import type { BrokerOptions } from './options.js';
import type { RetainedMessages } from './retained.js';
import type { Router } from './router.js';
import type { SessionLifecycle } from './session-lifecycle.js';
import type { SessionRegistry } from './sessions.js';
import type { BrokerStats } from './stats.js';
import type { SubscriptionIndex } from './subscription-index.js';
import type { Turn } from './turn.js';
import type { WireCache } from './wire-cache.js';

/** What connections and packet handlers see of the broker: its parts, wired once by `Broker`. */
export interface Core {
  readonly options: BrokerOptions;
  readonly logger: Logger;
  /** Whether debug records are wanted (checked before building them on hot paths). */
  readonly debugEnabled: boolean;
  readonly stats: BrokerStats;
  /** Plugins: authentication, authorization and observers. */
  readonly hooks: Hooks;
  /** Sessions by client id. */
  readonly sessions: SessionRegistry;
  /** Subscriptions: which sessions a topic reaches. */
  readonly index: SubscriptionIndex;
  /** Retained messages by topic. */
  readonly retained: RetainedMessages;
  /** Routes messages: the retained store, local sessions, shared groups, other cluster nodes. */
  readonly router: Router;
  /** The per-turn pipeline: store commit, acknowledgement release, batched writes. */
  readonly turn: Turn;
  /** One encoding per wire form of the message being routed. */
  readonly wire: WireCache;
  /** Open and connected connections. */
  readonly clients: ClientRegistry;
  /** Wills and session expiry. */
  readonly lifecycle: SessionLifecycle;
  /** The cluster this broker is a node of; undefined on a single node. */
  readonly cluster: ClusterLink | undefined;
  /** Reports an observer plugin's error (logged, never fatal). */
  readonly pluginFailed: (plugin: string, error: unknown) => void;
}
