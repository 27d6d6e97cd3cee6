/** Topic names and topic filters (spec 4.7, shared subscriptions 4.8.2): validation and matching. Pure. */
import { ProtocolViolationError } from './errors.js';
import { ReasonCode } from './reason-codes.js';

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;
const SHARE_PREFIX = '$share/';

/** Byte-length check only when it could matter: one UTF-16 unit is at most 3 UTF-8 bytes. */
function tooLong(s: string): boolean {
  return s.length > 21_845 && Buffer.byteLength(s, 'utf8') > 0xffff;
}

function topicNameProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'topic name is empty [MQTT-4.7.3-1]';
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return `topic name "${topic}" contains a wildcard [MQTT-3.3.2-2] [MQTT-4.7.1-1]`;
    if (c === 0) return 'topic name contains U+0000 [MQTT-4.7.3-2]';
  }
  if (tooLong(topic)) return 'topic name longer than 65535 bytes [MQTT-4.7.3-3]';
  return undefined;
}

/** Problem with a plain (non-shared) filter, or undefined when it is valid. */
function plainFilterProblem(filter: string): string | undefined {
  const n = filter.length;
  if (n === 0) return 'topic filter is empty [MQTT-4.7.3-1]';
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === HASH) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || i !== n - 1) {
        return `"#" must be last and alone in its level in "${filter}" [MQTT-4.7.1-2]`;
      }
    } else if (c === PLUS) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || (i < n - 1 && filter.charCodeAt(i + 1) !== SLASH)) {
        return `"+" must be alone in its level in "${filter}" [MQTT-4.7.1-3]`;
      }
    } else if (c === 0) {
      return 'topic filter contains U+0000 [MQTT-4.7.3-2]';
    }
  }
  if (tooLong(filter)) return 'topic filter longer than 65535 bytes [MQTT-4.7.3-3]';
  return undefined;
}

function filterProblem(filter: string): string | undefined {
  if (filter.startsWith(SHARE_PREFIX) && parseSharedSubscription(filter) === undefined) {
    return `invalid shared subscription "${filter}": needs $share/{group}/{filter}, group without + # / [MQTT-4.8.2-1] [MQTT-4.8.2-2]`;
  }
  return plainFilterProblem(filter);
}

/** Throws a ProtocolViolationError (reason 0x90) unless `topic` is a valid topic name. */
export function validateTopicName(topic: string): void {
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new ProtocolViolationError(problem, ReasonCode.topicNameInvalid);
}

/**
 * Throws a ProtocolViolationError (reason 0x8F) unless `filter` is a valid topic filter. A filter that
 * starts with `$share/` must also be a well-formed shared subscription.
 */
export function validateTopicFilter(filter: string): void {
  const problem = filterProblem(filter);
  if (problem !== undefined) throw new ProtocolViolationError(problem, ReasonCode.topicFilterInvalid);
}

/** True when `topic` is a valid topic name (non-empty, no wildcards, no U+0000, ≤ 65535 bytes). */
export function isValidTopicName(topic: string): boolean {
  return topicNameProblem(topic) === undefined;
}

/** True when `filter` is a valid topic filter (see validateTopicFilter). */
export function isValidTopicFilter(filter: string): boolean {
  return filterProblem(filter) === undefined;
}

/**
 * Splits `$share/{group}/{filter}` (MQTT 5, spec 4.8.2); undefined when `filter` is not a well-formed
 * shared subscription (group empty [MQTT-4.8.2-1], group with + # / [MQTT-4.8.2-2], or bad inner filter).
 */
export function parseSharedSubscription(filter: string): { group: string; filter: string } | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const slash = filter.indexOf('/', SHARE_PREFIX.length);
  if (slash <= SHARE_PREFIX.length) return undefined;
  const group = filter.slice(SHARE_PREFIX.length, slash);
  if (group.includes('+') || group.includes('#')) return undefined;
  const inner = filter.slice(slash + 1);
  if (plainFilterProblem(inner) !== undefined) return undefined;
  return { group, filter: inner };
}

/**
 * Reference matcher: does `filter` match `topic`? `#` matches the parent level too (`sport/#` matches
 * `sport`), `+` matches one level including an empty one, and topics starting with `$` are not matched
 * by a filter starting with a wildcard [MQTT-4.7.2-1]. Shared-subscription prefixes are not stripped.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === DOLLAR) {
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false;
  }
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    const part = t[i];
    if (part === undefined) return false;
    if (level !== '+' && level !== part) return false;
  }
  return f.length === t.length;
}
