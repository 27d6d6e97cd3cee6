import { MemoryPersistence } from '../../../src/persistence/memory.js';
import { persistenceConformance } from '../../conformance/persistence.js';

persistenceConformance('memory', {
  create: () => Promise.resolve(new MemoryPersistence()),
  reopen: (store) => Promise.resolve(store),
});
