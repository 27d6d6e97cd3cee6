/** The plugin API: authentication, authorization and observer hooks, run in plugin order. */
import type { Message } from '../model/message.js';
import type { QoS } from '../protocol/types.js';

/** Who a client is, as plugins see it. */
export interface ClientIdentity {
  clientId: string;
  /** User name from CONNECT, or as replaced by an authentication plugin (e.g. a certificate's CN). */
  username: string | undefined;
  remoteAddress: string | undefined;
  /** Name of the listener the client came in on ("tcp", "tls", "ws", …). */
  listener: string;
  /** Subject of the verified TLS client certificate, when the listener requires one. */
  certificateSubject?: Readonly<Record<string, string>>;
  /** Attributes an authentication plugin attached (e.g. JWT claims), for authorization plugins. */
  attributes?: Readonly<Record<string, unknown>>;
}

/** What an authentication plugin is asked. */
export interface AuthenticateRequest extends ClientIdentity {
  password: Buffer | undefined;
  protocolVersion: 3 | 4 | 5;
}

/** A refusal: CONNACK 4 / 0x86, 5 / 0x87, 3 / 0x88, or (banned) 5 / 0x8A. */
export type AuthenticateRefusal = 'bad-credentials' | 'not-authorized' | 'server-unavailable' | 'banned';

/** An acceptance, optionally replacing the user name and attaching attributes for authorization. */
export interface AuthenticateAcceptance {
  accept: true;
  username?: string;
  attributes?: Record<string, unknown>;
}

/**
 * A plugin's answer: accept ('accept' or an AuthenticateAcceptance), refuse, or undefined to
 * abstain (leave the decision to the other plugins and the anonymous policy).
 */
export type AuthenticateResult = 'accept' | AuthenticateAcceptance | AuthenticateRefusal | undefined;

/** One MQTT 5 enhanced-authentication exchange (AUTH packets), at CONNECT or a re-authentication. */
export interface AuthExchange {
  /** The Authentication Method the client named. */
  readonly method: string;
  /** The client, as its CONNECT described it. */
  readonly client: AuthenticateRequest;
  /** True for a re-authentication of a connected client (AUTH 0x19). */
  readonly reauthenticate: boolean;
  /** Scratch space a plugin keeps between the steps of one exchange. */
  readonly state: Record<string, unknown>;
}

/**
 * A step's answer: send a challenge (`continue`: AUTH 0x18 with this data), accept (CONNACK 0 or
 * AUTH 0x00, optionally with final data, a user name and attributes), or refuse.
 */
export type EnhancedAuthResult =
  | { continue: Buffer }
  | { accept: true; data?: Buffer; username?: string; attributes?: Record<string, unknown> }
  | AuthenticateRefusal;

/** An authorization answer: true allows, false denies, undefined abstains. */
export type AuthorizeResult = boolean | undefined;

/**
 * A broker plugin: implements only the hooks it needs. Hooks run in plugin order; the first
 * refusal or denial wins. Observers (`on*`) cannot change anything.
 */
export interface BrokerPlugin {
  readonly name: string;
  authenticate?(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult>;
  /** MQTT 5 Authentication Methods this plugin handles with `authenticateEnhanced`. */
  readonly authMethods?: readonly string[];
  /** One step of an enhanced-authentication exchange: `data` is the client's Authentication Data. */
  authenticateEnhanced?(exchange: AuthExchange, data: Buffer | undefined): EnhancedAuthResult | Promise<EnhancedAuthResult>;
  authorizePublish?(client: ClientIdentity, topic: string, qos: QoS, retain: boolean): AuthorizeResult | Promise<AuthorizeResult>;
  authorizeSubscribe?(client: ClientIdentity, topicFilter: string, qos: QoS): AuthorizeResult | Promise<AuthorizeResult>;
  /** Called for each delivery to a client, so it must be fast and synchronous (ACL "read" rules). */
  authorizeReceive?(client: ClientIdentity, topic: string): AuthorizeResult;
  /**
   * True while the plugin's authorize methods would abstain on everything (e.g. no rule is
   * configured yet): the broker then skips asking it per PUBLISH and per delivery. Asked once per
   * message, so it must be cheap.
   */
  authorizesNothing?(): boolean;
  onConnect?(client: ClientIdentity): void;
  onDisconnect?(client: ClientIdentity, reason: string): void;
  /** A subscription was granted (after SUBACK is queued), with the QoS granted. */
  onSubscribe?(client: ClientIdentity, topicFilter: string, qos: QoS): void;
  /** A subscription was removed by UNSUBSCRIBE. */
  onUnsubscribe?(client: ClientIdentity, topicFilter: string): void;
  /**
   * A message was published on this node and routed: by a client (`client` is its identity), a
   * will or the broker itself (`client` undefined; `message.origin` names the will's client). Runs
   * for every message, so it must be cheap and never wait: queue the work. The message is the
   * broker's own (its payload may be a view of a socket chunk): copy what you keep.
   */
  onPublish?(message: Readonly<Message>, client: ClientIdentity | undefined): void;
}

/** The outcome of running every authentication plugin. */
export type AuthenticateOutcome = { accept: true; username: string | undefined; attributes: Record<string, unknown> | undefined } | { accept: false; refusal: AuthenticateRefusal };

/** An answer that may be immediate or later. */
export type Maybe<T> = T | Promise<T>;

function isPromise<T>(value: Maybe<T>): value is Promise<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** The plugins in order, with each hook's list precomputed so an absent hook costs nothing. */
export class Hooks {
  private readonly authenticators: BrokerPlugin[];
  private readonly publishers: BrokerPlugin[];
  private readonly subscribers: BrokerPlugin[];
  private readonly receivers: BrokerPlugin[];
  private readonly observers: BrokerPlugin[];
  private readonly subscriptionObservers: BrokerPlugin[];
  private readonly publishObservers: BrokerPlugin[];
  /** True when some plugin observes subscriptions (so the handlers call `subscribed` / `unsubscribed`). */
  readonly observesSubscriptions: boolean;
  /** True when some plugin observes published messages (so the router calls `published`). */
  readonly observesPublish: boolean;

  constructor(
    readonly plugins: readonly BrokerPlugin[],
    /** Whether a client that no plugin accepted (all abstained) is let in. */
    private readonly allowAnonymous: boolean,
    /** Reports an observer's exception (logged, never fatal). */
    private readonly onError: (plugin: string, error: unknown) => void = () => undefined,
  ) {
    this.authenticators = plugins.filter((p) => p.authenticate !== undefined);
    this.publishers = plugins.filter((p) => p.authorizePublish !== undefined);
    this.subscribers = plugins.filter((p) => p.authorizeSubscribe !== undefined);
    this.receivers = plugins.filter((p) => p.authorizeReceive !== undefined);
    this.observers = plugins.filter((p) => p.onConnect !== undefined || p.onDisconnect !== undefined);
    this.subscriptionObservers = plugins.filter((p) => p.onSubscribe !== undefined || p.onUnsubscribe !== undefined);
    this.publishObservers = plugins.filter((p) => p.onPublish !== undefined);
    this.observesSubscriptions = this.subscriptionObservers.length > 0;
    this.observesPublish = this.publishObservers.length > 0;
  }

  /** The plugin that handles an MQTT 5 Authentication Method, if any. */
  enhancedAuthenticator(method: string): BrokerPlugin | undefined {
    return this.plugins.find((p) => p.authenticateEnhanced !== undefined && p.authMethods?.includes(method) === true);
  }

  /** True when some plugin checks deliveries (so the router must ask per message). */
  get checksReceive(): boolean {
    const receivers = this.receivers;
    for (let i = 0; i < receivers.length; i++) if (receivers[i]!.authorizesNothing?.() !== true) return true;
    return false;
  }

  /** True when some plugin checks publishes. */
  get checksPublish(): boolean {
    const publishers = this.publishers;
    for (let i = 0; i < publishers.length; i++) if (publishers[i]!.authorizesNothing?.() !== true) return true;
    return false;
  }

  /** Runs the authentication plugins in order: first refusal wins; all abstaining falls to the anonymous policy. */
  authenticate(request: AuthenticateRequest): Maybe<AuthenticateOutcome> {
    return this.runAuthenticate(request, 0, false, request.username, undefined);
  }

  private runAuthenticate(
    request: AuthenticateRequest,
    from: number,
    accepted: boolean,
    username: string | undefined,
    attributes: Record<string, unknown> | undefined,
  ): Maybe<AuthenticateOutcome> {
    for (let i = from; i < this.authenticators.length; i++) {
      const answer = (this.authenticators[i] as BrokerPlugin).authenticate!(request);
      if (isPromise(answer)) {
        return answer.then((resolved) => {
          const step = applyAuthenticate(resolved, accepted, username, attributes);
          if ('refusal' in step) return { accept: false, refusal: step.refusal };
          return this.runAuthenticate(request, i + 1, step.accepted, step.username, step.attributes);
        });
      }
      const step = applyAuthenticate(answer, accepted, username, attributes);
      if ('refusal' in step) return { accept: false, refusal: step.refusal };
      accepted = step.accepted;
      username = step.username;
      attributes = step.attributes;
    }
    if (accepted || this.allowAnonymous) return { accept: true, username, attributes };
    return { accept: false, refusal: 'not-authorized' };
  }

  /** Whether `client` may publish to `topic`: first denial wins; all abstaining allows. */
  authorizePublish(client: ClientIdentity, topic: string, qos: QoS, retain: boolean): Maybe<boolean> {
    return runAuthorize(this.publishers, 0, (p) => p.authorizePublish!(client, topic, qos, retain));
  }

  /** Whether `client` may subscribe to `topicFilter`: first denial wins; all abstaining allows. */
  authorizeSubscribe(client: ClientIdentity, topicFilter: string, qos: QoS): Maybe<boolean> {
    return runAuthorize(this.subscribers, 0, (p) => p.authorizeSubscribe!(client, topicFilter, qos));
  }

  /** Whether a message on `topic` may be delivered to `client` (synchronous). */
  authorizeReceive(client: ClientIdentity, topic: string): boolean {
    for (const plugin of this.receivers) if (plugin.authorizeReceive!(client, topic) === false) return false;
    return true;
  }

  /** Tells observers a client connected. Observer errors are isolated from the broker. */
  connected(client: ClientIdentity, onError: (plugin: string, error: unknown) => void): void {
    for (const plugin of this.observers) {
      try {
        plugin.onConnect?.(client);
      } catch (error) {
        onError(plugin.name, error);
      }
    }
  }

  /** Tells observers a client disconnected. */
  disconnected(client: ClientIdentity, reason: string, onError: (plugin: string, error: unknown) => void): void {
    for (const plugin of this.observers) {
      try {
        plugin.onDisconnect?.(client, reason);
      } catch (error) {
        onError(plugin.name, error);
      }
    }
  }

  /** Tells observers a subscription was granted. */
  subscribed(client: ClientIdentity, topicFilter: string, qos: QoS): void {
    for (const plugin of this.subscriptionObservers) {
      try {
        plugin.onSubscribe?.(client, topicFilter, qos);
      } catch (error) {
        this.onError(plugin.name, error);
      }
    }
  }

  /** Tells observers a subscription was removed. */
  unsubscribed(client: ClientIdentity, topicFilter: string): void {
    for (const plugin of this.subscriptionObservers) {
      try {
        plugin.onUnsubscribe?.(client, topicFilter);
      } catch (error) {
        this.onError(plugin.name, error);
      }
    }
  }

  /** Tells observers a message was published and routed (`client`: the publishing client, if any). */
  published(message: Readonly<Message>, client: ClientIdentity | undefined): void {
    const observers = this.publishObservers;
    for (let i = 0; i < observers.length; i++) {
      const plugin = observers[i] as BrokerPlugin;
      try {
        plugin.onPublish!(message, client);
      } catch (error) {
        this.onError(plugin.name, error);
      }
    }
  }
}

function applyAuthenticate(
  answer: AuthenticateResult,
  accepted: boolean,
  username: string | undefined,
  attributes: Record<string, unknown> | undefined,
): { refusal: AuthenticateRefusal } | { accepted: boolean; username: string | undefined; attributes: Record<string, unknown> | undefined } {
  if (answer === undefined) return { accepted, username, attributes };
  if (answer === 'accept') return { accepted: true, username, attributes };
  if (typeof answer === 'string') return { refusal: answer };
  return {
    accepted: true,
    username: answer.username ?? username,
    attributes: answer.attributes === undefined ? attributes : { ...attributes, ...answer.attributes },
  };
}

function runAuthorize(plugins: BrokerPlugin[], from: number, ask: (plugin: BrokerPlugin) => Maybe<AuthorizeResult>): Maybe<boolean> {
  for (let i = from; i < plugins.length; i++) {
    const answer = ask(plugins[i] as BrokerPlugin);
    if (isPromise(answer)) return answer.then((resolved) => (resolved === false ? false : runAuthorize(plugins, i + 1, ask)));
    if (answer === false) return false;
  }
  return true;
}
