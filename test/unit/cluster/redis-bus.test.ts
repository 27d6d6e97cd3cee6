/**
 * The Redis bus runs the cluster bus conformance suite against a real redis-server on a free loopback
 * port: a single node, and two nodes of one cluster for what crosses between nodes. Each cluster gets
 * its own key prefix; heartbeats are faster than the defaults so an adoption takes seconds.
 */
import { after, before } from 'node:test';
import { RedisBus } from '../../../src/cluster/redis/bus.js';
import { clusterBusConformance } from '../../conformance/cluster-bus.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.close();
});

const logger = { info: () => {}, warn: () => {}, error: (obj: object, msg: string) => console.error(msg, obj) };
let clusters = 0;

clusterBusConformance('redis', {
  maxNodes: 2,
  cluster: () => {
    const prefix = `bus-${++clusters}`;
    return Promise.resolve({
      bus: (nodeId) => new RedisBus({ url: redis.url, nodeId, prefix, logger, heartbeatMs: 200, heartbeatTtlMs: 1500, deadAfterMs: 1000, claimTimeoutMs: 3000 }),
      close: () => Promise.resolve(),
    });
  },
});
