/** The publish rate limit of one connection: token buckets of one second over messages and payload bytes. */

/**
 * Counts a client's PUBLISH packets and bytes per one-second window. Past `maxMessages` or
 * `maxBytes` (0: unlimited) the connection is slowed down — reading pauses until the window is over
 * — and nothing is dropped.
 */
export class PublishRateLimiter {
  private windowStart = 0;
  private messages = 0;
  private bytes = 0;
  /** True once this connection has been reported (one log line per connection). */
  reported = false;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  /** Counts one PUBLISH of `bytes`; returns the ms to wait when over the limit, or 0. */
  count(bytes: number, now: number): number {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.messages = 0;
      this.bytes = 0;
    }
    this.messages++;
    this.bytes += bytes;
    const over = (this.maxMessages > 0 && this.messages >= this.maxMessages) || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
    return over ? Math.max(1, this.windowStart + 1000 - now) : 0;
  }
}
