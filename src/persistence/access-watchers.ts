/** The listeners of an access store's changes, told in order; one that throws does not stop the others. */
import type { AccessChange } from './types.js';

/** Listeners of access changes (the `watch` side of an AccessStore). */
export class AccessWatchers {
  private readonly listeners = new Set<(changes: readonly AccessChange[] | 'all') => void>();

  /** Adds a listener; returns the function that removes it. */
  add(listener: (changes: readonly AccessChange[] | 'all') => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener. A listener's error is reported, not thrown into the writer. */
  tell(changes: readonly AccessChange[] | 'all'): void {
    for (const listener of this.listeners) {
      try {
        listener(changes);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
