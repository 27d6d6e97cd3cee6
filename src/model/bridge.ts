/** What the outside (HTTP API, metrics, $SYS, dashboard) sees of the bridges and may ask of them. Types only. */

/** Where a bridge stands: connecting for the first time, up, down (retrying), or stopped on request. */
export type BridgeState = 'connecting' | 'up' | 'down' | 'stopped';

/** One bridge's state and counters. */
export interface BridgeStatus {
  name: string;
  /** The remote broker's URL, without credentials. */
  url: string;
  state: BridgeState;
  /** MQTT version towards the remote (4 = 3.1.1, 5). */
  protocolVersion: 4 | 5;
  /** Client id on the remote broker. */
  remoteClientId: string;
  /** Client id of the bridge's own session on this broker. */
  localClientId: string;
  /** When the current state began (ISO 8601). */
  since: string;
  /** Messages for the remote held by this broker: the bridge session's queued plus in flight. */
  queued: number;
  /** Messages taken from the remote and published here. */
  messagesIn: number;
  /** Messages forwarded to the remote (and acknowledged by it, at QoS 1/2). */
  messagesOut: number;
  /** Messages for the remote not forwarded: session queue full, QoS 0 while down, or refused by the remote. */
  dropped: number;
  /** Successful connections to the remote since start. */
  connects: number;
  /** Why the bridge last went down or failed to connect; null while it never did. */
  lastError: string | null;
  topics: BridgeTopicView[];
}

/** One topic mapping, as configured. */
export interface BridgeTopicView {
  pattern: string;
  direction: 'out' | 'in' | 'both';
  qos: 0 | 1 | 2;
  localPrefix: string;
  remotePrefix: string;
}

/** The running bridges, for the HTTP API and $SYS. */
export interface BridgeControl {
  /** Every configured bridge, in configuration order. */
  list(): BridgeStatus[];
  /** One bridge, or undefined when there is no bridge of that name. */
  get(name: string): BridgeStatus | undefined;
  /** Starts a stopped bridge (nothing if it runs); false when there is no such bridge. */
  start(name: string): Promise<boolean>;
  /** Stops a bridge (its local session keeps collecting messages for the remote); false when there is no such bridge. */
  stop(name: string): Promise<boolean>;
}
