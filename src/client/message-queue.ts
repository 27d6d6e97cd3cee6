/** A bounded push → async-iterator queue: what `client.messages()` and a Subscription iterate. */

/** Messages kept for a slow or absent reader before the oldest are dropped (and counted). */
export const DEFAULT_QUEUE_LIMIT = 10_000;

/** Push side for the client; async-iterable side for the application. */
export class MessageQueue<T> implements AsyncIterableIterator<T> {
  /** Messages dropped because the reader fell `limit` behind. */
  dropped = 0;
  private readonly items: T[] = [];
  private head = 0;
  private waiter: ((result: IteratorResult<T>) => void) | undefined;
  private failWaiter: ((error: Error) => void) | undefined;
  private done = false;
  private error: Error | undefined;
  private readonly onClose: (() => void) | undefined;
  private readonly limit: number;

  constructor(limit = DEFAULT_QUEUE_LIMIT, onClose?: () => void) {
    this.limit = limit;
    this.onClose = onClose;
  }

  /** True once closed: pushes are ignored. */
  get closed(): boolean {
    return this.done;
  }

  /** Hands `item` to a waiting reader or buffers it. */
  push(item: T): void {
    if (this.done) return;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      this.failWaiter = undefined;
      waiter({ value: item, done: false });
      return;
    }
    if (this.items.length - this.head >= this.limit) {
      this.head++;
      this.dropped++;
    }
    this.items.push(item);
  }

  /** Ends iteration after the buffered items; with `error`, the reader gets it instead of `done`. */
  end(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.onClose?.();
    const waiter = this.waiter;
    const failWaiter = this.failWaiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    if (error !== undefined && failWaiter !== undefined) failWaiter(error);
    else waiter?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      const error = this.error;
      this.error = undefined;
      return error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  /** Called by `break` in a for-await loop: stops the queue. */
  return(): Promise<IteratorResult<T>> {
    this.items.length = 0;
    this.head = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
