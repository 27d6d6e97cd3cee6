import { startServer, type ServerOptions, type StarlingServer } from '../../src/server.js';
import type { BrokerPlugin } from '../../src/broker/hooks.js';
import { startGroupBroker, unavailableBroker, workerMode } from './worker-broker.js';

/** Starts a broker on a free loopback port with logging off (unless STARLING_TEST_LOG is set). */
export async function startTestBroker(options: ServerOptions = {}): Promise<StarlingServer> {
  const logLevel = (process.env['STARLING_TEST_LOG'] as ServerOptions['logLevel']) ?? 'silent';
  return startServer({ host: '127.0.0.1', port: 0, logLevel, ...options });
}

/** What the files that also run against a worker group use of a broker (docs/workers.md, "Tests"). */
export type TestServer = Pick<StarlingServer, 'broker' | 'port' | 'close'> & { readonly httpPort: number | undefined };

/**
 * `startTestBroker`, or with STARLING_TEST_WORKERS=N a real `starling --workers N` taking the same
 * `limits` and `features` (test/helpers/worker-broker.ts). Other options (plugins, authenticate, a store
 * object) exist only in process: in worker mode the broker is then a placeholder that throws when used,
 * and the tests using it are marked `inProcessOnly`.
 */
export async function startTestServer(options: ServerOptions = {}): Promise<TestServer> {
  if (!workerMode) return startTestBroker(options);
  const { limits, features, http, ...rest } = options;
  const inProcess = Object.keys(rest);
  if (inProcess.length > 0) return unavailableBroker(`options ${inProcess.join(', ')}`);
  if (http?.enabled === false) return unavailableBroker('HTTP off');
  return startGroupBroker({ limits: { ...limits }, features: { ...features } });
}

/**
 * A plugin that reports subscription requests as they arrive, so a test waits for a subscriber
 * (a CLI or a foreign client in another process) to be subscribed instead of sleeping.
 */
export function subscriptionWatcher(): { plugin: BrokerPlugin; subscribed(filter: string, timeoutMs?: number): Promise<void> } {
  const seen = new Map<string, number>();
  const waiters = new Set<{ filter: string; resolve: () => void }>();
  const plugin: BrokerPlugin = {
    name: 'test-subscription-watcher',
    authorizeSubscribe(_client, topicFilter) {
      seen.set(topicFilter, (seen.get(topicFilter) ?? 0) + 1);
      for (const waiter of waiters) if (waiter.filter === topicFilter) waiter.resolve();
      return undefined;
    },
  };
  return {
    plugin,
    /** Resolves at the next SUBSCRIBE request for `filter` (the subscription is in place in the same turn). */
    subscribed(filter, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no SUBSCRIBE to ${filter} within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          filter,
          resolve: () => {
            clearTimeout(timer);
            waiters.delete(waiter);
            // The subscription is applied right after authorization, in the same turn: let it happen.
            setImmediate(resolve);
          },
        };
        waiters.add(waiter);
      });
    },
  };
}
