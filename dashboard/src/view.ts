import type { Live } from './live.js';

/** What every view gets. */
export interface AppContext {
  live: Live;
  /** What the signed-in caller may do: viewers only read (write controls are not shown). */
  role: 'administrator' | 'viewer';
  /** The signed-in admin's name (session), if any. */
  admin: string | undefined;
}

/** One screen of the dashboard. */
export interface View {
  /** Builds the screen into `root`. */
  mount(root: HTMLElement, context: AppContext): void;
  /** Stops timers and subscriptions. */
  unmount?(): void;
}

/** Runs `fn` now and every `ms` until the returned stop function is called; skips a tick while one runs. */
export function every(ms: number, fn: () => Promise<void>): () => void {
  let running = false;
  let stopped = false;
  const tick = (): void => {
    if (running || stopped) return;
    running = true;
    fn()
      .catch((error: unknown) => console.warn(error))
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, ms);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
