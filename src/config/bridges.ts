/**
 * Checks of the `bridges` section beyond single values: unique names, remote URLs, TLS files only
 * with a TLS URL, valid topic filters, and topic mappings that would send a message round in a loop.
 * Each message names the bridge and the key.
 */
import { isValidTopicFilter } from '../protocol/topic.js';
import type { BridgeConfig, BridgeTopicConfig } from './schema.js';

const SCHEMES = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:']);

/** Every problem of `bridges`, as messages; `where(i)` names bridge i ("starling.json: bridges[0]"). */
export function checkBridges(bridges: readonly BridgeConfig[], where: (index: number) => string): string[] {
  const errors: string[] = [];
  const seen = new Map<string, number>();
  bridges.forEach((bridge, i) => {
    const at = `${where(i)} ("${bridge.name}")`;
    const first = seen.get(bridge.name);
    if (first !== undefined) errors.push(`${at}.name: "${bridge.name}" is already the name of bridges[${first}]; bridge names must be unique`);
    seen.set(bridge.name, i);
    let url: URL | undefined;
    try {
      url = new URL(bridge.url);
    } catch {
      errors.push(`${at}.url must be a URL such as mqtt://host:1883 (mqtt, mqtts, ws, wss); got ${JSON.stringify(bridge.url)}`);
    }
    if (url !== undefined && (!SCHEMES.has(url.protocol) || url.hostname === '')) {
      errors.push(`${at}.url must be mqtt://, mqtts://, ws:// or wss:// with a host; got ${JSON.stringify(bridge.url)}`);
    }
    const tls = url?.protocol === 'mqtts:' || url?.protocol === 'wss:';
    for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
      if (bridge[key] !== undefined && !tls) errors.push(`${at}.${key} is only for a TLS remote (mqtts:// or wss://); url is ${JSON.stringify(bridge.url)}`);
    }
    if ((bridge.certFile === undefined) !== (bridge.keyFile === undefined)) errors.push(`${at}: certFile and keyFile go together (a client certificate and its key)`);
    if (bridge.topics.length === 0) errors.push(`${at}.topics must list at least one topic mapping`);
    bridge.topics.forEach((topic, t) => errors.push(...checkTopic(topic, `${at}.topics[${t}]`)));
    errors.push(...loops(bridge, at));
  });
  return errors;
}

function checkTopic(topic: BridgeTopicConfig, at: string): string[] {
  const errors: string[] = [];
  if (topic.pattern === '' && topic.localPrefix === '' && topic.remotePrefix === '') errors.push(`${at}.pattern: an empty pattern needs a localPrefix or remotePrefix (the prefix is then the whole topic)`);
  for (const [key, filter] of [
    ['pattern', topic.pattern],
    ['localPrefix', topic.localPrefix + topic.pattern],
    ['remotePrefix', topic.remotePrefix + topic.pattern],
  ] as const) {
    if (filter !== '' && !isValidTopicFilter(filter)) {
      errors.push(`${at}.${key}: ${JSON.stringify(filter)} is not a valid topic filter (+ and # only as whole levels, # last)`);
      break;
    }
  }
  for (const key of ['localPrefix', 'remotePrefix'] as const) {
    if (/[+#]/.test(topic[key])) errors.push(`${at}.${key} must not contain + or #; got ${JSON.stringify(topic[key])}`);
  }
  return errors;
}

/**
 * A message taken in by one mapping (remote → local) and sent out by another (local → remote) to a
 * remote topic the first one takes in again would go round forever. Refused when both the local
 * filters and the remote filters of such a pair overlap. (A single `both` mapping is kept from
 * looping by the bridge itself: MQTT 5 No Local, or Mosquitto's try_private.)
 */
function loops(bridge: BridgeConfig, at: string): string[] {
  const errors: string[] = [];
  bridge.topics.forEach((a, i) => {
    if (a.direction === 'out') return;
    bridge.topics.forEach((b, j) => {
      if (i === j || b.direction === 'in') return;
      if (overlap(a.localPrefix + a.pattern, b.localPrefix + b.pattern) && overlap(a.remotePrefix + a.pattern, b.remotePrefix + b.pattern)) {
        errors.push(
          `${at}.topics[${j}]: a message that topics[${i}] brings in (remote ${JSON.stringify(a.remotePrefix + a.pattern)} → local ${JSON.stringify(a.localPrefix + a.pattern)}) ` +
            `is sent back out by topics[${j}] (local ${JSON.stringify(b.localPrefix + b.pattern)} → remote ${JSON.stringify(b.remotePrefix + b.pattern)}) and would loop: change a prefix or narrow a pattern`,
        );
      }
    });
  });
  return errors;
}

/** True when some topic matches both filters. */
export function overlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}
