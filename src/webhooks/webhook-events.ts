/** The events a webhook sends: what each holds, how a message payload is written, and which topics a webhook wants. */
import type { ClientIdentity } from '../broker/hooks.js';
import type { WebhookConfig } from '../config/schema.js';
import { topicMatches } from '../protocol/topic.js';

/** A broker event a webhook can be told of. */
export type WebhookEventName = WebhookConfig['events'][number];

/** One event waiting in a webhook's queue: its fields, and a message payload kept as bytes until it is sent. */
export interface QueuedEvent {
  /** Per webhook, one more for each event made, sent or not: a gap tells the receiver events were dropped. */
  readonly seq: number;
  readonly event: WebhookEventName;
  /** Milliseconds since the epoch when it happened. */
  readonly timestamp: number;
  readonly fields: Readonly<Record<string, string | number | boolean | null>>;
  /** message.published: the payload's first maxPayloadBytes bytes (a copy), and its full size. */
  readonly payload?: { readonly bytes: Buffer; readonly size: number };
}

/** What every client event says of the client. */
export function clientFields(client: ClientIdentity): Record<string, string | null> {
  return { clientId: client.clientId, username: client.username ?? null, address: client.remoteAddress ?? null, listener: client.listener };
}

/** An event as JSON: its fields, and a payload written as `encoding` with its size and whether it was cut. */
export function eventJson(event: QueuedEvent, encoding: 'utf8' | 'base64'): Record<string, unknown> {
  const json: Record<string, unknown> = { seq: event.seq, event: event.event, timestamp: event.timestamp, ...event.fields };
  const payload = event.payload;
  if (payload !== undefined) {
    json['payload'] = payload.bytes.toString(encoding);
    json['payloadEncoding'] = encoding;
    json['payloadSize'] = payload.size;
    json['payloadTruncated'] = payload.bytes.length < payload.size;
  }
  return json;
}

/** How many topic decisions a TopicFilters keeps before starting over. */
const DECISIONS_KEPT = 4096;

/**
 * A webhook's topic filters. Each topic's decision is remembered (up to DECISIONS_KEPT topics), so
 * steady traffic costs one map lookup per message.
 */
export class TopicFilters {
  private readonly decisions = new Map<string, boolean>();

  constructor(private readonly filters: readonly string[]) {}

  /** Whether some filter matches `topic` ([MQTT-4.7.2-1]: `#` and `+` first do not match `$` topics). */
  matches(topic: string): boolean {
    const known = this.decisions.get(topic);
    if (known !== undefined) return known;
    const matched = this.filters.some((filter) => topicMatches(filter, topic));
    if (this.decisions.size >= DECISIONS_KEPT) this.decisions.clear();
    this.decisions.set(topic, matched);
    return matched;
  }
}
