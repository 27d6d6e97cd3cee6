import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TopicTrie } from '../../../src/broker/topic-trie.js';
import { RetainedMessages } from '../../../src/broker/retained.js';
import { topicMatches } from '../../../src/protocol/topic.js';
import type { Message } from '../../../src/model/message.js';

function matches(trie: TopicTrie<string, number>, topic: string): string[] {
  const out: string[] = [];
  trie.match(topic, (subscriber, value) => out.push(`${subscriber}:${value}`));
  return out.sort();
}

test('[MQTT-4.7.1-2] "sport/#" matches "sport", "sport/tennis" and deeper levels', () => {
  const trie = new TopicTrie<string, number>();
  trie.add('sport/#', 'a', 1);
  assert.deepEqual(matches(trie, 'sport'), ['a:1']);
  assert.deepEqual(matches(trie, 'sport/tennis/player1'), ['a:1']);
  assert.deepEqual(matches(trie, 'sports'), []);
});

test('[MQTT-4.7.1-3] "+" matches exactly one level, including an empty one', () => {
  const trie = new TopicTrie<string, number>();
  trie.add('sport/+', 'a', 1);
  trie.add('+/+', 'b', 1);
  trie.add('/+', 'c', 1);
  assert.deepEqual(matches(trie, 'sport/tennis'), ['a:1', 'b:1']);
  assert.deepEqual(matches(trie, 'sport/'), ['a:1', 'b:1']);
  assert.deepEqual(matches(trie, 'sport'), []);
  assert.deepEqual(matches(trie, '/finance'), ['b:1', 'c:1']);
});

test('[MQTT-4.7.2-1] topics starting with $ are not matched by leading wildcards', () => {
  const trie = new TopicTrie<string, number>();
  trie.add('#', 'hash', 1);
  trie.add('+/monitor/Clients', 'plus', 1);
  trie.add('$SYS/#', 'sys', 1);
  trie.add('$SYS/monitor/+', 'sysplus', 1);
  assert.deepEqual(matches(trie, '$SYS/monitor/Clients'), ['sys:1', 'sysplus:1']);
  assert.deepEqual(matches(trie, 'a/monitor/Clients'), ['hash:1', 'plus:1']);
});

test('remove prunes and stops matching; size counts entries', () => {
  const trie = new TopicTrie<string, number>();
  assert.equal(trie.add('a/b', 's1', 0), true);
  assert.equal(trie.add('a/b', 's1', 1), false);
  trie.add('a/+', 's2', 0);
  assert.equal(trie.size, 2);
  assert.equal(trie.remove('a/b', 's1'), true);
  assert.equal(trie.remove('a/b', 's1'), false);
  assert.deepEqual(matches(trie, 'a/b'), ['s2:0']);
  assert.equal(trie.size, 1);
});

const level = fc.constantFrom('a', 'b', 'c', '', '$s');
const topicArb = fc.array(level, { minLength: 1, maxLength: 4 }).map((levels) => levels.join('/'));
const filterLevel = fc.constantFrom('a', 'b', 'c', '', '+', '$s');
const filterArb = fc
  .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .chain((f) => fc.constantFrom(f, '#'));

test('[MQTT-3.3.2-3] property: the trie matches exactly the filters the reference matcher accepts', () => {
  fc.assert(
    fc.property(fc.uniqueArray(filterArb, { maxLength: 12 }), topicArb, (filters, topic) => {
      const trie = new TopicTrie<string, number>();
      filters.forEach((f, i) => trie.add(f, `s${i}`, i));
      const expected = filters.flatMap((f, i) => (topicMatches(f, topic) ? [`s${i}:${i}`] : [])).sort();
      assert.deepEqual(matches(trie, topic), expected);
    }),
    { seed: 7, numRuns: 2000 },
  );
});

function message(topic: string, payload = 'x'): Message {
  return { topic, payload: Buffer.from(payload), qos: 0, retain: true, origin: 't', receivedAt: 0 };
}

test('property: retained lookup by filter returns exactly the topics the reference matcher accepts', () => {
  fc.assert(
    fc.property(fc.uniqueArray(topicArb, { maxLength: 12 }), filterArb, (topics, filter) => {
      const retained = new RetainedMessages();
      for (const t of topics) retained.set(message(t));
      const expected = topics.filter((t) => topicMatches(filter, t)).sort();
      assert.deepEqual(retained.match(filter).map((m) => m.topic).sort(), expected);
      assert.equal(retained.size, topics.length);
    }),
    { seed: 11, numRuns: 2000 },
  );
});

test('[MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained payload clears the topic and is not stored', () => {
  const retained = new RetainedMessages();
  retained.set(message('a/b'));
  retained.set(message('a/b', ''));
  assert.equal(retained.get('a/b'), undefined);
  assert.equal(retained.size, 0);
  assert.deepEqual(retained.match('#'), []);
});
