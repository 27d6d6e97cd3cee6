/**
 * A Starling broker in its own process for bench/fuzz-long.ts, so that a crash shows as an exit
 * rather than taking the fuzzer down with it. Started with fork(); argv[2] is the JSON of the limits.
 * Sends { type: 'ready', port } once listening; answers { type: 'stats' } with memory and counters.
 */
import { startServer } from '../../src/server.js';
import type { LimitsConfig } from '../../src/config/config.js';

/** What the child reports. */
export interface ChildStats {
  type: 'stats';
  rssMb: number;
  heapUsedMb: number;
  arrayBuffersMb: number;
  connections: number;
  subscriptions: number;
  sessions: number;
  protocolErrors: number;
}

const limits = JSON.parse(process.argv[2] ?? '{}') as Partial<LimitsConfig>;
const server = await startServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', limits });

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stats') {
    const m = process.memoryUsage();
    const stats: ChildStats = {
      type: 'stats',
      rssMb: m.rss / 2 ** 20,
      heapUsedMb: m.heapUsed / 2 ** 20,
      arrayBuffersMb: m.arrayBuffers / 2 ** 20,
      connections: server.broker.connectionCount,
      subscriptions: server.broker.query.totals().subscriptions,
      sessions: server.broker.query.totals().sessions,
      protocolErrors: server.broker.stats.protocolErrors,
    };
    process.send?.(stats);
  } else if (message.type === 'stop') {
    void server.close().then(() => process.exit(0));
  }
});
process.send?.({ type: 'ready', port: server.port });
