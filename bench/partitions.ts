/**
 * The long form of the cluster partition tests (test/faults/partitions-*.test.ts): one lab (three
 * nodes, Redis, clients, each in its own network namespace), then rounds of random faults with
 * random durations for `--minutes` (default 20): a node cut from Redis, a node cut from its
 * clients, Redis cut from every node, a slow lossy link to Redis, a session moving away from a
 * node while it is cut off. Every round runs QoS 1/2 traffic between persistent clients on
 * different nodes and checks from outside that nothing acknowledged was lost and no QoS 2 message
 * arrived twice. Exits 1 if any round failed; prints one line per round.
 *
 *   npm run build && npm run test:faults:long -- --minutes 20 --seed 7 [--faults redis-down,cut-redis]
 *
 * Needs root (network namespaces, iptables) and the Debian packages .ci/run installs.
 */
import { parseArgs } from 'node:util';
import { sleep } from '../test/helpers/cluster.js';
import { startClusterLab, type ClusterLab, type LabNode } from '../test/faults/cluster-lab.js';
import { describe, endAll, type Verdict } from '../test/faults/ledger.js';
import { allReady, evidence, finish, startTraffic } from '../test/faults/partition-scenarios.js';

const KINDS = ['cut-redis', 'cut-clients', 'redis-down', 'slow-redis', 'move-during-cut'] as const;
const { values } = parseArgs({ options: { minutes: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' }, faults: { type: 'string', default: KINDS.join(',') } } });
const kinds = values.faults.split(',').filter((k): k is (typeof KINDS)[number] => (KINDS as readonly string[]).includes(k));
if (kinds.length === 0) throw new Error(`--faults: expected some of ${KINDS.join(',')}, got "${values.faults}"`);
const minutes = Number(values.minutes);

/** mulberry32, so a failing sequence of rounds can be replayed with its seed. */
let state = Number(values.seed) >>> 0;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (low: number, high: number): number => Math.round(low + random() * (high - low));
function pick<T>(items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** One fault: its name and what it does to the lab once traffic flows. */
interface Fault {
  name: string;
  /** The node whose clients are most affected (the moving subscriber starts there). */
  home: LabNode;
  apply(cl: ClusterLab, moveSubscriber: () => void): Promise<void>;
}

function randomFault(nodes: readonly LabNode[]): Fault {
  const victim = pick(nodes);
  const id = victim.nodeId;
  switch (pick(kinds)) {
    case 'cut-redis': {
      const ms = between(1000, 20_000);
      return { name: `${id} cut from Redis for ${ms} ms`, home: victim, apply: async (cl) => cutFor(cl, id, 'redis', ms) };
    }
    case 'cut-clients': {
      const ms = between(1000, 15_000);
      return { name: `${id} cut from its clients for ${ms} ms`, home: victim, apply: async (cl) => cutFor(cl, id, 'clients', ms) };
    }
    case 'redis-down': {
      const ms = between(1000, 15_000);
      return {
        name: `Redis cut from every node for ${ms} ms`,
        home: victim,
        apply: async (cl) => {
          await cl.lab.isolate('redis', nodes.map((n) => n.nodeId));
          await sleep(ms);
          await cl.lab.healAll();
        },
      };
    }
    case 'slow-redis': {
      const settings = { delay: between(20, 200), jitter: between(0, 100), loss: between(0, 10) / 100, reorder: between(0, 5) / 100, reorderMs: 60 };
      const ms = between(5000, 20_000);
      return {
        name: `${id}'s link to Redis slow for ${ms} ms (${JSON.stringify(settings)})`,
        home: victim,
        apply: async (cl) => {
          const link = await cl.lab.impair(id, 'redis', settings, between(1, 1000));
          await sleep(ms);
          await link.remove();
        },
      };
    }
    case 'move-during-cut': {
      const ms = between(500, 9000);
      return {
        name: `a session moving away from ${id} while it is cut from Redis for ${ms} ms`,
        home: victim,
        apply: async (cl, moveSubscriber) => {
          await cl.lab.cut(id, 'redis');
          await sleep(300);
          moveSubscriber();
          await sleep(ms - 300);
          await cl.lab.heal(id, 'redis');
        },
      };
    }
  }
}

async function cutFor(cl: ClusterLab, a: string, b: string, ms: number): Promise<void> {
  await cl.lab.cut(a, b);
  await sleep(ms);
  await cl.lab.heal(a, b);
}

const cl = await startClusterLab();
const nodes = cl.nodes;
const results: { round: number; fault: string; verdict: Verdict | undefined; error?: string }[] = [];
const end = Date.now() + minutes * 60_000;
let round = 0;
try {
  while (Date.now() < end) {
    round++;
    const fault = randomFault(nodes);
    const others = nodes.filter((n) => n !== fault.home) as [LabNode, LabNode];
    const started = Date.now();
    try {
      await allReady(nodes, 60_000);
      const scene = await startTraffic(cl, `r${round}`, fault.home, others);
      try {
        await sleep(between(1000, 3000));
        const faultAt = Date.now();
        await fault.apply(cl, () => scene.mover.client.stream.destroy());
        await allReady(nodes, 60_000);
        await sleep(3000);
        const verdict = await finish(scene, 30_000);
        results.push({ round, fault: fault.name, verdict });
        const ok = verdict.lost.length === 0 && verdict.duplicatedQos2.length === 0;
        console.log(`round ${round} ${ok ? 'ok' : 'FAILED'} (${Math.round((Date.now() - started) / 1000)} s): ${fault.name}: ${describe(verdict)}`);
        if (!ok) console.log(evidence(nodes, faultAt, scene.mover.connects));
      } finally {
        await scene.close();
      }
    } catch (error) {
      results.push({ round, fault: fault.name, verdict: undefined, error: error instanceof Error ? error.message : String(error) });
      console.log(`round ${round} FAILED: ${fault.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
} finally {
  endAll();
  await cl.close();
}
const failed = results.filter((r) => r.verdict === undefined || r.verdict.lost.length > 0 || r.verdict.duplicatedQos2.length > 0);
const acked = results.reduce((sum, r) => sum + (r.verdict?.acked ?? 0), 0);
console.log(`${results.length - failed.length} passed, ${failed.length} failed (${results.length} rounds, ${acked} acknowledged messages checked, seed ${values.seed})`);
process.exitCode = failed.length > 0 ? 1 : 0;
