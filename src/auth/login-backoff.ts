/** Settings of LoginBackoff; every field has a default. */
export interface LoginBackoffOptions {
  /** Delay of the first refusal from an address, in milliseconds (doubles with each further failure). */
  baseDelayMs?: number;
  /** Longest delay of one refusal, in milliseconds. */
  maxDelayMs?: number;
  /** Failures are forgotten after this long without a new one, in milliseconds. */
  forgetAfterMs?: number;
  /** Most addresses tracked at once; the least recently failed is dropped first. */
  maxTracked?: number;
}

interface Failures {
  count: number;
  last: number;
}

/**
 * Slows brute force: each failed login from an address delays its refusal (CONNACK), doubling per
 * failure up to a bound. Memory is bounded: at most `maxTracked` addresses are remembered.
 */
export class LoginBackoff {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly forgetAfterMs: number;
  private readonly maxTracked: number;
  /** Insertion order is recency order: a failure re-inserts its address at the end. */
  private readonly failures = new Map<string, Failures>();

  constructor(options: LoginBackoffOptions = {}, private readonly now: () => number = Date.now) {
    this.baseDelayMs = options.baseDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 5_000;
    this.forgetAfterMs = options.forgetAfterMs ?? 60_000;
    this.maxTracked = options.maxTracked ?? 10_000;
  }

  /** Addresses currently tracked. */
  get size(): number {
    return this.failures.size;
  }

  /** Records a failure from `address`; returns how long to wait before answering it, in milliseconds. */
  failed(address: string | undefined): number {
    const key = address ?? '';
    const now = this.now();
    const previous = this.failures.get(key);
    const count = previous !== undefined && now - previous.last < this.forgetAfterMs ? previous.count + 1 : 1;
    this.failures.delete(key);
    this.failures.set(key, { count, last: now });
    while (this.failures.size > this.maxTracked) {
      const oldest = this.failures.keys().next();
      if (oldest.done === true) break;
      this.failures.delete(oldest.value);
    }
    return Math.min(this.baseDelayMs * 2 ** Math.min(count - 1, 30), this.maxDelayMs);
  }

  /** Forgets the failures of `address` after a successful login. */
  succeeded(address: string | undefined): void {
    this.failures.delete(address ?? '');
  }

  /** Waits the back-off for a failure from `address`, then resolves with `value`. */
  refuse<T>(address: string | undefined, value: T): Promise<T> {
    const delay = this.failed(address);
    return new Promise((resolve) => setTimeout(() => resolve(value), delay));
  }
}
