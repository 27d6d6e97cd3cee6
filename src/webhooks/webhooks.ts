/**
 * The webhooks of the configuration, as one observer plugin: each broker event a webhook asked for
 * becomes an event in its queue (docs/webhooks.md). Observing costs the broker a function call per
 * event; a message costs a topic lookup per webhook that wants messages, and a payload copy when
 * it matches. Nothing here ever waits on the network.
 */
import type { BrokerPlugin, ClientIdentity } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import { WEBHOOK_DEFAULTS, type WebhookConfig } from '../config/schema.js';
import type { Message } from '../model/message.js';
import { clientFields, TopicFilters, type QueuedEvent, type WebhookEventName } from './webhook-events.js';
import { WebhookSender } from './webhook-sender.js';

/** A webhook with what it wants. */
interface Hook {
  sender: WebhookSender;
  events: ReadonlySet<WebhookEventName>;
  topics: TopicFilters;
  maxPayloadBytes: number;
}

/** Every configured webhook, and the plugin that feeds them. */
export class Webhooks {
  /** One sender per webhook, for metrics. */
  readonly senders: readonly WebhookSender[];
  /** The observer to give the broker; undefined without webhooks. */
  readonly plugin: BrokerPlugin | undefined;

  constructor(configs: readonly WebhookConfig[], logger: Logger) {
    const hooks: Hook[] = configs.map((config) => ({
      sender: new WebhookSender(config, logger),
      events: new Set(config.events),
      topics: new TopicFilters(config.topics ?? []),
      maxPayloadBytes: config.maxPayloadBytes ?? WEBHOOK_DEFAULTS.maxPayloadBytes,
    }));
    this.senders = hooks.map((h) => h.sender);
    this.plugin = hooks.length === 0 ? undefined : observer(hooks);
  }

  /** Sends what is queued one last time and stops every webhook. */
  async close(): Promise<void> {
    await Promise.all(this.senders.map((s) => s.close()));
  }
}

/** The plugin: only the hooks some webhook wants, so the broker skips the others entirely. */
function observer(hooks: readonly Hook[]): BrokerPlugin {
  const wanting = (event: WebhookEventName): Hook[] => hooks.filter((h) => h.events.has(event));
  const tell = (list: readonly Hook[], event: WebhookEventName, fields: QueuedEvent['fields']): void => {
    const timestamp = Date.now();
    for (const hook of list) hook.sender.offer((seq) => ({ seq, event, timestamp, fields }));
  };
  const plugin: BrokerPlugin = { name: 'webhooks' };
  const connected = wanting('client.connected');
  if (connected.length > 0) plugin.onConnect = (client) => tell(connected, 'client.connected', clientFields(client));
  const disconnected = wanting('client.disconnected');
  if (disconnected.length > 0) plugin.onDisconnect = (client, reason) => tell(disconnected, 'client.disconnected', { ...clientFields(client), reason });
  const subscribed = wanting('client.subscribed');
  if (subscribed.length > 0) plugin.onSubscribe = (client, topic, qos) => tell(subscribed, 'client.subscribed', { ...clientFields(client), topic, qos });
  const unsubscribed = wanting('client.unsubscribed');
  if (unsubscribed.length > 0) plugin.onUnsubscribe = (client, topic) => tell(unsubscribed, 'client.unsubscribed', { ...clientFields(client), topic });
  const publishing = wanting('message.published');
  if (publishing.length > 0) plugin.onPublish = (message, client) => published(publishing, message, client);
  return plugin;
}

/** message.published for each webhook whose filters match the topic. */
function published(hooks: readonly Hook[], message: Readonly<Message>, client: ClientIdentity | undefined): void {
  const topic = message.topic;
  let fields: QueuedEvent['fields'] | undefined;
  for (const hook of hooks) {
    if (!hook.topics.matches(topic)) continue;
    fields ??= {
      // The broker's own messages have no client; a will has its client's id and no identity.
      clientId: message.origin === '' ? null : message.origin,
      username: client?.username ?? null,
      topic,
      qos: message.qos,
      retain: message.retain,
    };
    const event = fields;
    const payload = message.payload;
    const cap = hook.maxPayloadBytes;
    // A copy: the payload may be a view of a socket chunk, and the event outlives this call.
    hook.sender.offer((seq) => ({ seq, event: 'message.published', timestamp: message.receivedAt, fields: event, payload: { bytes: Buffer.from(payload.subarray(0, cap)), size: payload.length } }));
  }
}
