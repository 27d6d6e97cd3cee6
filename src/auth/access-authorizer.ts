/**
 * Authorization by every rule source at once: the ACL file (read-only, reloaded on SIGHUP) and the
 * rules of users and roles managed at runtime. A matching `deny` in any source wins; otherwise a
 * grant in any source allows; otherwise the default access decides (docs/security.md, "Order of
 * evaluation"). Rules are compiled once per client and rebuilt lazily after a change, so a change
 * applies to connected clients at their next PUBLISH, SUBSCRIBE or delivery.
 */
import type { BrokerPlugin, ClientIdentity } from '../broker/hooks.js';
import type { StoredAclRule } from '../persistence/types.js';
import { addFileRules, anyCovers, anyMatch, ClientRules, matchFilter, RECEIVE_CACHE_SIZE, substitute, type AclFile } from './acl.js';

/** What a client gets on a topic no rule matches: `auto` is readwrite until any rule applies to the client, then deny. */
export type DefaultAccess = 'auto' | 'readwrite' | 'read' | 'write' | 'deny';

/** Default access for clients without a user name and for those with one. */
export interface DefaultAccessConfig {
  anonymous: DefaultAccess;
  authenticated: DefaultAccess;
}

/** The runtime rules as the authorizer reads them. */
export interface RuntimeRules {
  /** Changes whenever a user or role changes. */
  readonly generation: number;
  /** Whether any user or role holds a rule. */
  readonly anyRules: boolean;
  /** A user's own and roles' rules; undefined for a name that is no runtime user. */
  rulesOf(username: string): readonly StoredAclRule[] | undefined;
}

/** One client's rules, compiled, and the generations they were compiled from. */
interface Compiled {
  generation: number;
  fileGeneration: number;
  rules: ClientRules;
  /** Whether any rule (file or runtime) applies to the client: `auto` then denies what no rule grants. */
  hasRules: boolean;
}

/** The authorization plugin of the ACL file and the runtime rules together. */
export class AccessAuthorizer implements BrokerPlugin {
  readonly name = 'access-control';
  private file: AclFile | undefined;
  private fileGeneration = 0;
  private readonly perClient = new WeakMap<ClientIdentity, Compiled>();

  constructor(
    private readonly runtime: RuntimeRules,
    file: AclFile | undefined,
    private readonly defaults: DefaultAccessConfig,
  ) {
    this.file = file;
  }

  /** Swaps in a newly loaded ACL file (SIGHUP); it applies from each client's next check. */
  replace(file: AclFile): void {
    this.file = file;
    this.fileGeneration++;
  }

  authorizePublish(client: ClientIdentity, topic: string): boolean | undefined {
    if (this.idle()) return undefined;
    const compiled = this.compiled(client);
    const levels = topic.split('/');
    if (anyMatch(compiled.rules.deny, levels)) return false;
    if (anyMatch(compiled.rules.write, levels)) return true;
    return this.fallback(client, compiled, 'write');
  }

  authorizeSubscribe(client: ClientIdentity, topicFilter: string): boolean | undefined {
    if (this.idle()) return undefined;
    const compiled = this.compiled(client);
    const levels = matchFilter(topicFilter).split('/');
    // A subscription wholly inside a deny is refused; one that only overlaps it is filtered per message.
    if (anyCovers(compiled.rules.deny, levels)) return false;
    if (anyCovers(compiled.rules.read, levels)) return true;
    return this.fallback(client, compiled, 'read');
  }

  authorizeReceive(client: ClientIdentity, topic: string): boolean | undefined {
    if (this.idle()) return undefined;
    const compiled = this.compiled(client);
    const cache = compiled.rules.received;
    const cached = cache.get(topic);
    if (cached !== undefined) return cached;
    const levels = topic.split('/');
    const allowed = anyMatch(compiled.rules.deny, levels) ? false : anyMatch(compiled.rules.read, levels) ? true : this.fallback(client, compiled, 'read');
    if (cache.size >= RECEIVE_CACHE_SIZE) cache.clear();
    cache.set(topic, allowed);
    return allowed;
  }

  /** The broker skips asking while there is nothing to check. */
  authorizesNothing(): boolean {
    return this.idle();
  }

  /** No file, no runtime rule, and a default that allows everything: nothing to check (the usual case without ACLs). */
  private idle(): boolean {
    return this.file === undefined && !this.runtime.anyRules && allowsAll(this.defaults.anonymous) && allowsAll(this.defaults.authenticated);
  }

  private fallback(client: ClientIdentity, compiled: Compiled, need: 'read' | 'write'): boolean {
    const setting = client.username === undefined ? this.defaults.anonymous : this.defaults.authenticated;
    const access = setting === 'auto' ? (compiled.hasRules ? 'deny' : 'readwrite') : setting;
    return access === 'readwrite' || access === need;
  }

  private compiled(client: ClientIdentity): Compiled {
    const known = this.perClient.get(client);
    const generation = this.runtime.generation;
    if (known !== undefined && known.generation === generation && known.fileGeneration === this.fileGeneration) return known;
    const rules = new ClientRules();
    const file = this.file;
    if (file !== undefined) addFileRules(file, client, rules);
    const runtime = client.username === undefined ? undefined : this.runtime.rulesOf(client.username);
    for (const rule of runtime ?? []) {
      const filter = substitute({ access: rule.access, filter: rule.topic }, client);
      if (filter !== undefined) rules.add(rule.access, filter);
    }
    const compiled: Compiled = { generation, fileGeneration: this.fileGeneration, rules, hasRules: file !== undefined || (runtime !== undefined && runtime.length > 0) };
    this.perClient.set(client, compiled);
    return compiled;
  }
}

function allowsAll(access: DefaultAccess): boolean {
  return access === 'auto' || access === 'readwrite';
}
