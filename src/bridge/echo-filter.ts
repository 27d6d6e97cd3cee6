/**
 * Echo suppression for a `both` mapping over plain MQTT 3.1.1 (a remote that takes neither No Local
 * nor Mosquitto's bridge flag): such a remote hands the bridge back each message it sent. The
 * bridge remembers what it sent to topics it also takes in, and drops the first message that comes
 * back with the same topic and payload within a minute.
 */

/** How long a sent message waits for its echo. */
const ECHO_WINDOW_MS = 60_000;
/** Sent messages remembered at most; beyond it the oldest are forgotten (their echo would pass once). */
const MAX_REMEMBERED = 10_000;

interface Sent {
  payload: Buffer;
  at: number;
}

/** What a bridge sent and may get back. */
export class EchoFilter {
  private readonly byTopic = new Map<string, Sent[]>();
  private size = 0;

  /** Remembers a copy sent to the remote on `topic` (the payload is kept: pass a copy that is not reused). */
  sent(topic: string, payload: Buffer, now = Date.now()): void {
    if (this.size >= MAX_REMEMBERED) this.forgetOldest();
    const list = this.byTopic.get(topic);
    const entry = { payload, at: now };
    if (list === undefined) this.byTopic.set(topic, [entry]);
    else list.push(entry);
    this.size++;
  }

  /** True (and forgotten) when a message from the remote is the echo of one the bridge sent. */
  isEcho(topic: string, payload: Buffer, now = Date.now()): boolean {
    const list = this.byTopic.get(topic);
    if (list === undefined) return false;
    while (list.length > 0 && now - list[0]!.at > ECHO_WINDOW_MS) {
      list.shift();
      this.size--;
    }
    const i = list.findIndex((s) => s.payload.equals(payload));
    if (i >= 0) {
      list.splice(i, 1);
      this.size--;
    }
    if (list.length === 0) this.byTopic.delete(topic);
    return i >= 0;
  }

  /** Messages remembered. */
  get remembered(): number {
    return this.size;
  }

  private forgetOldest(): void {
    let oldestTopic: string | undefined;
    let oldest = Infinity;
    for (const [topic, list] of this.byTopic) {
      const at = list[0]?.at ?? Infinity;
      if (at < oldest) {
        oldest = at;
        oldestTopic = topic;
      }
    }
    if (oldestTopic === undefined) return;
    const list = this.byTopic.get(oldestTopic)!;
    list.shift();
    this.size--;
    if (list.length === 0) this.byTopic.delete(oldestTopic);
  }
}
