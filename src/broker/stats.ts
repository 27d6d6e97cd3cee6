/** Counters the broker keeps; exposed through `Broker.stats`, later through $SYS and /metrics. */
export class BrokerStats {
  connectionsAccepted = 0;
  connectionsRefused = 0;
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** QoS 0 messages dropped because a subscriber's write buffer was full. */
  droppedBufferFull = 0;
  /** QoS 1/2 messages dropped because a session queue was full. */
  droppedQueueFull = 0;
  /** Retained messages not kept (or evicted) because of the retained limit. */
  droppedRetainedFull = 0;
  /** Store commits that failed (their acknowledgements were never sent). */
  storeFailures = 0;
  /** Messages not delivered because their MQTT 5 Message Expiry Interval had passed. */
  droppedExpired = 0;
  /** Messages not sent because they exceeded the client's MQTT 5 Maximum Packet Size. */
  droppedTooLarge = 0;
  /** PUBLISH packets refused by an authorization plugin. */
  publishDenied = 0;
  /** Subscriptions refused by an authorization plugin. */
  subscribeDenied = 0;
  /** Requests refused by a limit (subscriptions per client, topic levels or length). */
  limitRefusals = 0;
  /** Times a client was slowed down for exceeding its publish rate. */
  rateLimited = 0;
  /** Connections closed for a protocol error. */
  protocolErrors = 0;
  /** PUBLISH packets received from clients, by QoS (index 0, 1, 2). */
  readonly messagesReceivedByQos: [number, number, number] = [0, 0, 0];
  /** PUBLISH packets sent to clients, by QoS (index 0, 1, 2). */
  readonly messagesSentByQos: [number, number, number] = [0, 0, 0];
  /** CONNECTs refused by an authentication plugin (bad credentials or not authorized). */
  authFailures = 0;
  readonly startedAt = Date.now();
}
