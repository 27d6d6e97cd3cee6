/** TopicMap: Mosquitto `topic` line semantics — subscriptions on each side and prefix translation both ways. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TopicMap } from '../../../src/bridge/topic-map.js';
import type { BridgeTopicConfig } from '../../../src/config/schema.js';

const t = (pattern: string, direction: 'out' | 'in' | 'both', qos: 0 | 1 | 2, localPrefix = '', remotePrefix = ''): BridgeTopicConfig => ({ pattern, direction, qos, localPrefix, remotePrefix });

describe('TopicMap', () => {
  test('the issue example: sensors out under edge-1/, commands in from the remote root', () => {
    const map = new TopicMap([t('sensors/#', 'out', 1, '', 'edge-1/'), t('cmd/#', 'in', 1, 'edge-1/', '')]);
    assert.deepEqual(map.localSubscriptions, [{ filter: 'sensors/#', qos: 1 }]);
    assert.deepEqual(map.remoteSubscriptions, [{ filter: 'cmd/#', qos: 1 }]);
    assert.deepEqual(map.toRemote('sensors/a/temp'), [{ topic: 'edge-1/sensors/a/temp', qos: 1 }]);
    assert.deepEqual(map.toLocal('cmd/reboot'), [{ topic: 'edge-1/cmd/reboot', qos: 1 }]);
    assert.deepEqual(map.toRemote('cmd/reboot'), [], 'an in mapping sends nothing out');
    assert.deepEqual(map.toLocal('sensors/x'), [], 'an out mapping brings nothing in');
  });

  test('both: subscribed on each side with the prefixes; an empty pattern maps one topic to another', () => {
    const map = new TopicMap([t('+/status', 'both', 2, 'site/', 'remote/site/'), t('', 'out', 0, 'local/alarm', 'cloud/alarm')]);
    assert.deepEqual(map.localSubscriptions, [{ filter: 'site/+/status', qos: 2 }, { filter: 'local/alarm', qos: 0 }]);
    assert.deepEqual(map.remoteSubscriptions, [{ filter: 'remote/site/+/status', qos: 2 }]);
    assert.deepEqual(map.toRemote('site/pump/status'), [{ topic: 'remote/site/pump/status', qos: 2 }]);
    assert.deepEqual(map.toLocal('remote/site/pump/status'), [{ topic: 'site/pump/status', qos: 2 }]);
    assert.deepEqual(map.toRemote('local/alarm'), [{ topic: 'cloud/alarm', qos: 0 }]);
  });

  test('"a/#" also matches "a", which lacks the prefix "a/": skipped, as Mosquitto does', () => {
    const map = new TopicMap([t('#', 'out', 1, 'a/', 'b/')]);
    assert.deepEqual(map.toRemote('a'), []);
    assert.deepEqual(map.toRemote('a/x'), [{ topic: 'b/x', qos: 1 }]);
  });

  test('overlapping mappings: one subscription per filter at the highest QoS; one copy per distinct remote topic', () => {
    const map = new TopicMap([t('x/#', 'out', 0), t('x/#', 'out', 2), t('x/y', 'out', 1, '', 'other/')]);
    assert.deepEqual(map.localSubscriptions, [{ filter: 'x/#', qos: 2 }, { filter: 'x/y', qos: 1 }]);
    assert.deepEqual(map.toRemote('x/y'), [{ topic: 'x/y', qos: 2 }, { topic: 'other/x/y', qos: 1 }]);
  });

  test('property: out then back in through a both mapping gives the original topic', () => {
    const level = fc.stringMatching(/^[a-z0-9]{1,6}$/);
    fc.assert(
      fc.property(fc.array(level, { minLength: 1, maxLength: 4 }), fc.array(level, { maxLength: 2 }), fc.array(level, { maxLength: 2 }), (levels, lp, rp) => {
        const localPrefix = lp.map((l) => `${l}/`).join('');
        const remotePrefix = rp.map((l) => `${l}/`).join('');
        const map = new TopicMap([t('#', 'both', 1, localPrefix, remotePrefix)]);
        const topic = localPrefix + levels.join('/');
        const [out] = map.toRemote(topic);
        assert.ok(out !== undefined);
        assert.equal(out.topic, remotePrefix + levels.join('/'));
        assert.deepEqual(map.toLocal(out.topic), [{ topic, qos: 1 }]);
      }),
    );
  });
});
