import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { open } from 'lmdb';
import { FORMAT_VERSION, LmdbPersistence, StoreFormatError } from '../../../src/persistence/lmdb.js';
import type { Persistence } from '../../../src/persistence/types.js';
import { persistenceConformance } from '../../conformance/persistence.js';

const root = mkdtempSync(join(tmpdir(), 'starling-lmdb-'));
const dirs = new Map<Persistence, string>();
let counter = 0;
after(() => rmSync(root, { recursive: true, force: true }));

persistenceConformance('lmdb (embedded)', {
  create: () => {
    const dataDir = join(root, `store-${++counter}`);
    const store = new LmdbPersistence({ dataDir });
    dirs.set(store, dataDir);
    return Promise.resolve(store);
  },
  reopen: async (store) => {
    const dataDir = dirs.get(store)!;
    await store.close();
    const reopened = new LmdbPersistence({ dataDir });
    dirs.set(reopened, dataDir);
    return reopened;
  },
});

test('lmdb: the format version is recorded, and data of a newer format is refused with a clear message', async () => {
  const dataDir = join(root, 'format');
  const store = new LmdbPersistence({ dataDir });
  assert.equal(store.formatVersion, FORMAT_VERSION);
  await store.close();
  // Simulate data written by a future Starling.
  const raw = open({ path: join(dataDir, 'starling.mdb'), maxDbs: 12 });
  const meta = raw.openDB({ name: 'meta' });
  await meta.put('format', FORMAT_VERSION + 1);
  await raw.close();
  assert.throws(() => new LmdbPersistence({ dataDir }), (error: unknown) => error instanceof StoreFormatError && /newer than this Starling understands/.test(error.message));
});
