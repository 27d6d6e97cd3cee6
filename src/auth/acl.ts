/**
 * Mosquitto's ACL file format and the authorization plugin that enforces it:
 *
 *     # topic lines before any `user` line apply to anonymous clients
 *     topic read public/#
 *     user alice
 *     topic readwrite alice/#
 *     topic deny alice/secret
 *     # pattern lines apply to every client; %c is the client id, %u the user name
 *     pattern write devices/%c/state
 *
 * Access is `read`, `write`, `readwrite` (the default) or `deny`; a matching `deny` wins over
 * any grant. Publishing needs `write`, subscribing and receiving need `read`.
 */
import { readFile } from 'node:fs/promises';
import type { BrokerPlugin, ClientIdentity } from '../broker/hooks.js';

/** Access a rule grants, or `deny`. */
export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

/** One `topic` or `pattern` line. */
export interface AclRule {
  access: AclAccess;
  filter: string;
  /** Line number in the file (for messages). */
  line: number;
}

/** An ACL file that cannot be used, with the line at fault. */
export class AclFileError extends Error {
  readonly code = 'ERR_ACL_FILE';
}

const ACCESS_WORDS: readonly string[] = ['read', 'write', 'readwrite', 'deny'];

/** The rules of an ACL file, grouped as Mosquitto applies them. */
export class AclFile {
  /** `topic` lines before the first `user` line: for clients without a user name. */
  readonly anonymous: AclRule[] = [];
  /** `topic` lines after each `user NAME` line. */
  readonly users = new Map<string, AclRule[]>();
  /** `pattern` lines, wherever they are: for every client, after %c / %u substitution. */
  readonly patterns: AclRule[] = [];

  /** Parses the file text; `source` names it in error messages. */
  static parse(text: string, source = 'ACL file'): AclFile {
    const acl = new AclFile();
    let current = acl.anonymous;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim();
      if (line === '' || line.startsWith('#')) continue;
      const where = `${source}:${i + 1}`;
      const [keyword = '', rest = ''] = splitFirst(line);
      if (keyword === 'user') {
        if (rest === '') throw new AclFileError(`${where}: "user" needs a user name`);
        current = acl.users.get(rest) ?? [];
        acl.users.set(rest, current);
        continue;
      }
      if (keyword !== 'topic' && keyword !== 'pattern') {
        throw new AclFileError(`${where}: unknown keyword "${keyword}" (expected user, topic or pattern)`);
      }
      let access: AclAccess = 'readwrite';
      let filter = rest;
      const [word = '', after = ''] = splitFirst(rest);
      if (ACCESS_WORDS.includes(word) && after !== '') {
        access = word as AclAccess;
        filter = after;
      }
      const problem = invalidFilter(filter);
      if (problem !== undefined) throw new AclFileError(`${where}: "${filter}": ${problem}`);
      (keyword === 'topic' ? current : acl.patterns).push({ access, filter, line: i + 1 });
    }
    return acl;
  }

  /** Reads and parses a file. */
  static async load(path: string): Promise<AclFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new AclFileError(`cannot read ACL file ${path}: ${(error as Error).message}`);
    }
    return AclFile.parse(text, path);
  }
}

function splitFirst(text: string): [string, string] {
  const match = /^(\S+)\s*(.*)$/.exec(text);
  return match === null ? ['', ''] : [match[1] as string, (match[2] as string).trim()];
}

/** Why `filter` is not a valid MQTT topic filter, or undefined. */
function invalidFilter(filter: string): string | undefined {
  if (filter.length === 0) return 'empty topic filter';
  if (filter.includes('\u0000')) return 'topic filter contains NUL';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return '"#" must be a whole level and the last one';
    if (level.includes('+') && level !== '+') return '"+" must be a whole level';
  }
  return undefined;
}

/** Whether a topic (split in levels) matches a filter (split in levels) [MQTT-4.7.1, MQTT-4.7.2-1]. */
export function filterMatches(filter: readonly string[], topic: readonly string[]): boolean {
  const first = filter[0];
  if ((first === '+' || first === '#') && (topic[0] ?? '').startsWith('$')) return false;
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i] as string;
    if (f === '#') return true;
    const t = topic[i];
    if (t === undefined) return false;
    if (f !== '+' && f !== t) return false;
  }
  return filter.length === topic.length;
}

/** Whether every topic that `sub` matches is also matched by `acl` (a subscription within a rule). */
export function filterCovers(acl: readonly string[], sub: readonly string[]): boolean {
  const first = acl[0];
  if ((first === '+' || first === '#') && (sub[0] ?? '').startsWith('$')) return false;
  for (let i = 0; i < acl.length; i++) {
    const a = acl[i] as string;
    if (a === '#') return true;
    const s = sub[i];
    if (s === undefined || s === '#') return false;
    if (a === '+') continue;
    if (s === '+' || a !== s) return false;
  }
  return sub.length === acl.length;
}

/** The rules that apply to one client, split in levels, substitution done. */
export class ClientRules {
  readonly deny: string[][] = [];
  readonly read: string[][] = [];
  readonly write: string[][] = [];
  /** Recent receive decisions by topic (bounded). */
  readonly received = new Map<string, boolean>();

  /** Adds one rule (its filter already substituted). */
  add(access: AclAccess, filter: string): void {
    const levels = filter.split('/');
    if (access === 'deny') this.deny.push(levels);
    if (access === 'read' || access === 'readwrite') this.read.push(levels);
    if (access === 'write' || access === 'readwrite') this.write.push(levels);
  }
}

/** Receive decisions remembered per client (then the cache starts over). */
export const RECEIVE_CACHE_SIZE = 1024;
/** A value that would change the meaning of a filter when substituted into a grant. */
const UNSAFE_SUBSTITUTION = /[+#/]/;

/** An AclFile compiled for checking, with a per-client cache. */
class CompiledAcl {
  private readonly perClient = new WeakMap<ClientIdentity, ClientRules>();

  constructor(readonly file: AclFile) {}

  rulesFor(client: ClientIdentity): ClientRules {
    let rules = this.perClient.get(client);
    if (rules !== undefined) return rules;
    rules = new ClientRules();
    addFileRules(this.file, client, rules);
    this.perClient.set(client, rules);
    return rules;
  }
}

/** Adds the rules of `file` that apply to `client` (its user section, or the anonymous one, and the patterns). */
export function addFileRules(file: AclFile, client: ClientIdentity, rules: ClientRules): void {
  const username = client.username;
  const own = username === undefined ? file.anonymous : (file.users.get(username) ?? []);
  for (const rule of own) rules.add(rule.access, rule.filter);
  for (const rule of file.patterns) {
    const filter = substitute(rule, client);
    if (filter !== undefined) rules.add(rule.access, filter);
  }
}

/**
 * %c and %u replaced; undefined when the rule does not apply to this client: %u without a user
 * name, or a grant whose id or name holds `+`, `#` or `/` (which would widen it to other clients'
 * topics). A deny rule is always kept: widening a deny only denies more.
 */
export function substitute(rule: Pick<AclRule, 'access' | 'filter'>, client: ClientIdentity): string | undefined {
  const filter = rule.filter;
  const usesUser = filter.includes('%u');
  const usesClient = filter.includes('%c');
  if (!usesUser && !usesClient) return filter;
  const username = client.username;
  if (usesUser && username === undefined) return undefined;
  if (rule.access !== 'deny') {
    if (usesUser && UNSAFE_SUBSTITUTION.test(username as string)) return undefined;
    if (usesClient && UNSAFE_SUBSTITUTION.test(client.clientId)) return undefined;
  }
  return filter.replaceAll('%c', client.clientId).replaceAll('%u', username ?? '');
}

/** Whether any filter (in levels) matches the topic (in levels). */
export function anyMatch(filters: readonly string[][], topic: readonly string[]): boolean {
  for (const filter of filters) if (filterMatches(filter, topic)) return true;
  return false;
}

/** Whether any filter (in levels) covers every topic of the subscription filter (in levels). */
export function anyCovers(filters: readonly string[][], sub: readonly string[]): boolean {
  for (const filter of filters) if (filterCovers(filter, sub)) return true;
  return false;
}

/** The filter a subscription matches against: `$share/{group}/{filter}` is checked as `{filter}`. */
export function matchFilter(topicFilter: string): string {
  if (!topicFilter.startsWith('$share/')) return topicFilter;
  const slash = topicFilter.indexOf('/', 7);
  return slash < 0 ? topicFilter : topicFilter.slice(slash + 1);
}

/**
 * Enforces an ACL file: publish needs `write`, subscribe and receive need `read`, a matching
 * `deny` wins. Never abstains: what the file does not grant is denied.
 */
export class AclAuthorizer implements BrokerPlugin {
  readonly name = 'acl-file';
  private compiled: CompiledAcl;

  constructor(file: AclFile) {
    this.compiled = new CompiledAcl(file);
  }

  /** Swaps in a newly loaded file (SIGHUP); it applies to connected clients from their next packet. */
  replace(file: AclFile): void {
    this.compiled = new CompiledAcl(file);
  }

  authorizePublish(client: ClientIdentity, topic: string): boolean {
    const rules = this.compiled.rulesFor(client);
    const levels = topic.split('/');
    return !anyMatch(rules.deny, levels) && anyMatch(rules.write, levels);
  }

  authorizeSubscribe(client: ClientIdentity, topicFilter: string): boolean {
    const rules = this.compiled.rulesFor(client);
    const levels = matchFilter(topicFilter).split('/');
    // A subscription wholly inside a deny is refused; one that only overlaps a deny is filtered per message.
    return !anyCovers(rules.deny, levels) && anyCovers(rules.read, levels);
  }

  authorizeReceive(client: ClientIdentity, topic: string): boolean {
    const rules = this.compiled.rulesFor(client);
    const cached = rules.received.get(topic);
    if (cached !== undefined) return cached;
    const levels = topic.split('/');
    const allowed = !anyMatch(rules.deny, levels) && anyMatch(rules.read, levels);
    if (rules.received.size >= RECEIVE_CACHE_SIZE) rules.received.clear();
    rules.received.set(topic, allowed);
    return allowed;
  }
}
