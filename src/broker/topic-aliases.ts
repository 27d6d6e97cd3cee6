/** MQTT 5 topic aliases of one connection, both ways: those the client set towards us, and those we assign towards it. */
import { ProtocolViolationError } from '../protocol/errors.js';
import { ReasonCode } from '../protocol/reason-codes.js';

/** Aliases a client set towards the broker (index = alias). */
export class InboundTopicAliases {
  private readonly topics: (string | undefined)[] = [];

  constructor(private readonly maximum: number) {}

  /** The topic of a PUBLISH carrying `alias`: records it when `topic` is set, looks it up when empty. */
  resolve(topic: string, alias: number): string {
    if (alias === 0 || alias > this.maximum) {
      // [MQTT-3.3.2-9] [MQTT-3.3.2-10] an alias outside 1..Topic Alias Maximum is invalid (0x94).
      throw new ProtocolViolationError(`topic alias ${alias} outside 1..${this.maximum}`, ReasonCode.topicAliasInvalid);
    }
    if (topic.length > 0) {
      this.topics[alias] = topic;
      return topic;
    }
    const known = this.topics[alias];
    if (known === undefined) throw new ProtocolViolationError(`topic alias ${alias} used before it was set`);
    return known;
  }
}

/** Aliases the broker assigns towards a client that accepts `maximum` of them: a repeated topic is sent as its alias alone. */
export class OutboundTopicAliases {
  private readonly assigned = new Map<string, number>();

  constructor(private readonly maximum: number) {}

  /** For `topic`: an existing alias (`known`), a new one to announce with the topic, or none when all are taken. */
  lookup(topic: string): { alias: number; known: boolean } | undefined {
    const alias = this.assigned.get(topic);
    if (alias !== undefined) return { alias, known: true };
    if (this.assigned.size >= this.maximum) return undefined;
    const next = this.assigned.size + 1;
    this.assigned.set(topic, next);
    return { alias: next, known: false };
  }

  /** Takes back an alias the client never learnt (its PUBLISH was not sent). */
  forget(topic: string): void {
    this.assigned.delete(topic);
  }
}
