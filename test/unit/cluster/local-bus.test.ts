/** The single-node bus (`LocalBus`) runs the cluster bus conformance suite: a cluster of one. */
import { LocalBus } from '../../../src/cluster/local.js';
import { MemoryPersistence } from '../../../src/persistence/memory.js';
import { clusterBusConformance } from '../../conformance/cluster-bus.js';

clusterBusConformance('local (a cluster of one)', {
  maxNodes: 1,
  cluster: () => Promise.resolve({ bus: (nodeId) => new LocalBus(new MemoryPersistence(), nodeId), close: () => Promise.resolve() }),
});
