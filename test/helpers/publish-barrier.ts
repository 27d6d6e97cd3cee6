/**
 * Worker mode: `server.broker.publish` of a worker group is asynchronous (an MQTT client sends it),
 * where the in-process one is done when it returns. The test clients wait here for those publishes to
 * be acknowledged before they connect or subscribe, so a test sees the order it wrote.
 */
const pending = new Set<Promise<void>>();

/** Registers a publish in progress (settled: resolved or failed). */
export function trackPublish(done: Promise<void>): void {
  pending.add(done);
  void done.finally(() => pending.delete(done));
}

/** Resolves once every publish registered so far is acknowledged; undefined (no wait at all) when none is. */
export function publishesSettled(): Promise<void> | undefined {
  if (pending.size === 0) return undefined;
  return Promise.all([...pending]).then(() => undefined);
}
