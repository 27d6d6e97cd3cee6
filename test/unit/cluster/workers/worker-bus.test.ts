/**
 * A worker group's bus and store, each worker's `WorkerBus` joined to one `Hub` in this process over a
 * real message channel: the bus runs the cluster bus conformance suite (two workers; a worker that dies
 * comes back under its id), and `HubStore` — the hub's store as a worker sees it — the persistence suite,
 * on the embedded store (LMDB) and on memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { ClusterBus } from '../../../../src/cluster/types.js';
import { Hub } from '../../../../src/cluster/workers/hub.js';
import { WorkerBus } from '../../../../src/cluster/workers/worker-bus.js';
import { LmdbPersistence } from '../../../../src/persistence/lmdb.js';
import { MemoryPersistence } from '../../../../src/persistence/memory.js';
import type { Persistence } from '../../../../src/persistence/types.js';
import { clusterBusConformance } from '../../../conformance/cluster-bus.js';
import { persistenceConformance } from '../../../conformance/persistence.js';
import { linkPair, type LinkPair } from '../../../helpers/link-pair.js';

const quiet = { info: () => {}, warn: () => {}, error: (obj: object, msg: string) => console.error(msg, obj) };
const links = new Map<ClusterBus, LinkPair>();

/** A worker bus `nodeId` joined to `hub`. */
function join_(hub: Hub, nodeId: string): WorkerBus {
  const pair = linkPair();
  hub.attach(nodeId, pair.hub);
  const bus = new WorkerBus(nodeId, pair.worker, quiet);
  links.set(bus, pair);
  return bus;
}

clusterBusConformance('workers (a hub and its workers)', {
  maxNodes: 2,
  cluster: async () => {
    const store = new MemoryPersistence();
    const hub = await Hub.open({ store, nodes: ['conf-a', 'conf-b', 'conf-1'], logger: quiet, claimTimeoutMs: 3000 });
    const made: WorkerBus[] = [];
    return {
      bus: (nodeId) => {
        const bus = join_(hub, nodeId);
        made.push(bus);
        return bus;
      },
      close: async () => {
        for (const bus of made) links.get(bus)?.cut();
        hub.close();
        await store.close();
      },
    };
  },
  failover: {
    kind: 'restart',
    crash: (bus) => {
      links.get(bus)?.cut();
      return new Promise((resolve) => setImmediate(resolve));
    },
  },
});

const root = mkdtempSync(join(tmpdir(), 'starling-hub-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A worker's store on a hub over `open()`'s store; reopening starts a new hub and worker on the same data. */
function hubStoreSuite(name: string, open: (dir: string) => Persistence): void {
  const behind = new Map<Persistence, { store: Persistence; dir: string; link: LinkPair }>();
  let counter = 0;
  const start = async (dir: string): Promise<Persistence> => {
    const store = open(dir);
    const hub = await Hub.open({ store, nodes: ['w1'], logger: quiet });
    const bus = join_(hub, 'w1');
    behind.set(bus.store, { store, dir, link: links.get(bus)! });
    const close = bus.store.close.bind(bus.store);
    bus.store.close = async () => {
      await close();
      links.get(bus)?.cut();
      hub.close();
      await store.close();
    };
    return bus.store;
  };
  persistenceConformance(name, {
    bodies: 'per-delivery',
    records: false,
    create: () => start(join(root, `${name.replace(/\W+/g, '-')}-${++counter}`)),
    reopen: async (hubStore) => {
      const { dir } = behind.get(hubStore)!;
      await hubStore.close();
      return start(dir);
    },
  });
}

hubStoreSuite('hub store (a worker\'s view), on lmdb', (dir) => new LmdbPersistence({ dataDir: dir }));
const memories = new Map<string, MemoryPersistence>();
hubStoreSuite('hub store (a worker\'s view), on memory', (dir) => {
  let store = memories.get(dir);
  if (store === undefined) memories.set(dir, (store = new MemoryPersistence()));
  return store;
});
