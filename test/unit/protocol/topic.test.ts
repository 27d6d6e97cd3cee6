import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ProtocolViolationError,
  ReasonCode,
  isValidTopicFilter,
  isValidTopicName,
  parseSharedSubscription,
  topicMatches,
  validateTopicFilter,
  validateTopicName,
} from '../../../src/protocol/index.js';

void describe('topic names', () => {
  void test('[MQTT-4.7.1-1] [MQTT-3.3.2-2] wildcards are not allowed in a topic name', () => {
    for (const t of ['#', '+', 'a/#', 'a/+/b', 'sport+', 'a#']) assert.equal(isValidTopicName(t), false, t);
    assert.throws(() => validateTopicName('a/+'), (e: unknown) =>
      e instanceof ProtocolViolationError && e.reasonCode === ReasonCode.topicNameInvalid);
  });

  void test('[MQTT-4.7.3-1] a topic name is at least one character long', () => {
    assert.equal(isValidTopicName(''), false);
    assert.throws(() => validateTopicName(''), ProtocolViolationError);
  });

  void test('[MQTT-4.7.3-2] a topic name does not contain U+0000', () => {
    assert.equal(isValidTopicName('a\u0000b'), false);
  });

  void test('[MQTT-4.7.3-3] a topic name encodes to at most 65535 bytes', () => {
    assert.equal(isValidTopicName('a'.repeat(65_535)), true);
    assert.equal(isValidTopicName('a'.repeat(65_536)), false);
    assert.equal(isValidTopicName('é'.repeat(32_768)), false); // 65536 bytes in 32768 characters
  });

  void test('4.7.3: levels may be empty, contain spaces, and case matters', () => {
    for (const t of ['/', '//', '/finance', 'a//b', 'Accounts payable', '$SYS/broker', 'ACCOUNTS']) {
      assert.equal(isValidTopicName(t), true, t);
    }
  });
});

void describe('topic filters', () => {
  void test('[MQTT-4.7.1-2] # is last and alone in its level (4.7.1.2 examples)', () => {
    for (const f of ['sport/tennis/player1/#', 'sport/#', '#', '/#', '+/#']) assert.equal(isValidTopicFilter(f), true, f);
    for (const f of ['sport/tennis#', 'sport/tennis/#/ranking', '#/', '##', 'a/#b']) assert.equal(isValidTopicFilter(f), false, f);
  });

  void test('[MQTT-4.7.1-3] + is alone in its level (4.7.1.3 examples)', () => {
    for (const f of ['+', '+/tennis/#', 'sport/+/player1', '/+', '+/+', '+//+']) assert.equal(isValidTopicFilter(f), true, f);
    for (const f of ['sport+', '+a', 'a/b+/c', '++']) assert.equal(isValidTopicFilter(f), false, f);
  });

  void test('[MQTT-4.7.3-1] [MQTT-4.7.3-2] a filter is non-empty and has no U+0000', () => {
    assert.equal(isValidTopicFilter(''), false);
    assert.equal(isValidTopicFilter('a/\u0000'), false);
    assert.throws(() => validateTopicFilter(''), (e: unknown) =>
      e instanceof ProtocolViolationError && e.reasonCode === ReasonCode.topicFilterInvalid);
  });
});

void describe('topic matching', () => {
  void test('4.7.1.2: "sport/tennis/player1/#" matches the parent and every descendant', () => {
    for (const t of ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/tennis/player1/score/wimbledon']) {
      assert.equal(topicMatches('sport/tennis/player1/#', t), true, t);
    }
    assert.equal(topicMatches('sport/tennis/player1/#', 'sport/tennis/player2'), false);
  });

  void test('4.7.1.2: "sport/#" also matches "sport"; "#" matches everything not starting with $', () => {
    assert.equal(topicMatches('sport/#', 'sport'), true);
    assert.equal(topicMatches('sport/#', 'sports'), false);
    for (const t of ['a', '/', 'a/b/c', '/finance']) assert.equal(topicMatches('#', t), true, t);
  });

  void test('4.7.1.3: "+" matches exactly one level, which may be empty', () => {
    assert.equal(topicMatches('sport/tennis/+', 'sport/tennis/player1'), true);
    assert.equal(topicMatches('sport/tennis/+', 'sport/tennis/player2'), true);
    assert.equal(topicMatches('sport/tennis/+', 'sport/tennis/player1/ranking'), false);
    assert.equal(topicMatches('sport/+', 'sport'), false);
    assert.equal(topicMatches('sport/+', 'sport/'), true);
    assert.equal(topicMatches('+/+', '/finance'), true);
    assert.equal(topicMatches('/+', '/finance'), true);
    assert.equal(topicMatches('+', '/finance'), false);
    assert.equal(topicMatches('+/#', '/'), true);
  });

  void test('[MQTT-4.7.2-1] topics starting with $ are not matched by a leading wildcard', () => {
    assert.equal(topicMatches('#', '$SYS/monitor/Clients'), false);
    assert.equal(topicMatches('+/monitor/Clients', '$SYS/monitor/Clients'), false);
    assert.equal(topicMatches('$SYS/#', '$SYS/monitor/Clients'), true);
    assert.equal(topicMatches('$SYS/monitor/+', '$SYS/monitor/Clients'), true);
    assert.equal(topicMatches('a/#', 'a/$b'), true);
  });

  void test('[MQTT-4.7.3-4] matching is exact and case sensitive: nothing is normalized or substituted', () => {
    assert.equal(topicMatches('ACCOUNTS', 'Accounts'), false);
    assert.equal(topicMatches('caf\u00e9', 'cafe\u0301'), false); // NFC and NFD forms of the same text
    assert.equal(topicMatches('+/caf\u00e9', 'x/caf\u00e9'), true);
    assert.equal(topicMatches('a/b', 'a//b'), false);
    assert.equal(topicMatches('a/b', ' a/b'), false);
    assert.equal(topicMatches('Accounts payable', 'Accounts payable'), true);
    assert.equal(topicMatches('a/b', 'a/b/'), false);
    assert.equal(topicMatches('/a', 'a'), false);
  });
});

void describe('shared subscriptions', () => {
  void test('4.8.2: $share/{group}/{filter} is split into group and filter', () => {
    assert.deepEqual(parseSharedSubscription('$share/g/a/+/#'), { group: 'g', filter: 'a/+/#' });
    assert.deepEqual(parseSharedSubscription('$share/consumer1/sport/tennis/+'), { group: 'consumer1', filter: 'sport/tennis/+' });
    assert.deepEqual(parseSharedSubscription('$share/g//'), { group: 'g', filter: '/' });
    assert.equal(parseSharedSubscription('a/b'), undefined);
    assert.equal(parseSharedSubscription('$SHARE/g/a'), undefined);
  });

  void test('[MQTT-4.8.2-1] [MQTT-4.8.2-2] the group is non-empty, without + # /, and a filter follows', () => {
    for (const f of ['$share//a', '$share/g+/a', '$share/#/a', '$share/g', '$share/g/', '$share/g/a#']) {
      assert.equal(parseSharedSubscription(f), undefined, f);
      assert.equal(isValidTopicFilter(f), false, f);
    }
    assert.equal(isValidTopicFilter('$share/g/#'), true);
  });
});
