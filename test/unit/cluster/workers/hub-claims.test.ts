// Unit tests of the hub's claims: a claim whose holder dies before it answers waits for the holder's next process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HubClaims, type ClaimsHost } from '../../../../src/cluster/workers/hub-claims.js';
import { HubState } from '../../../../src/cluster/workers/hub-state.js';
import type { HubFrame } from '../../../../src/cluster/workers/frames.js';
import type { StoreOp } from '../../../../src/persistence/types.js';

function setup(): { claims: HubClaims; started: Set<string>; sent: [string, HubFrame][] } {
  const state = new HubState();
  // w1 stored a persistent session for "sensor": w1 owns it.
  state.applyOps('w1', [{ op: 'putSession', session: { clientId: 'sensor', expiryInterval: 3600, subscriptions: [] } }], []);
  const started = new Set(['w1', 'w2']);
  const sent: [string, HubFrame][] = [];
  const silent = (): void => {};
  const host: ClaimsHost = {
    isStarted: (node) => started.has(node),
    send: (node, frame) => {
      sent.push([node, frame]);
      return true;
    },
    commit: (_ops: StoreOp[]) => Promise.resolve(),
    log: { info: silent, warn: silent, error: silent },
    timeoutMs: 5000,
  };
  return { claims: new HubClaims(state, host), started, sent };
}

const releases = (sent: [string, HubFrame][]): [string, number][] =>
  sent.flatMap(([node, frame]) => (frame.t === 'release' ? [[node, frame.rid] as [string, number]] : []));

test('a claim asked of a worker that dies before it answers waits for its next process and asks that one', async () => {
  const { claims, started, sent } = setup();
  let done = false;
  const claim = claims.claim('w2', 'sensor', true).then((state) => {
    done = true;
    return state;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(releases(sent).map(([node]) => node), ['w1'], 'the holder is asked to let go');
  // w1 is killed before it answers: the session's inbox entries are only delivered by its restart.
  started.delete('w1');
  claims.down('w1');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(done, false, 'the claim does not take the session as stored while its holder is down');
  // w1's next process starts (it loads the session and its inbox), and is asked in turn.
  started.add('w1');
  claims.started('w1');
  await new Promise((resolve) => setImmediate(resolve));
  const asked = releases(sent);
  assert.equal(asked.length, 2, 'the new process is asked to let go');
  assert.equal(done, false);
  claims.released(asked[1]![1]);
  const state = await claim;
  assert.equal(state?.sessions[0]?.clientId, 'sensor', 'then the session is taken, as the new process left it');
});
