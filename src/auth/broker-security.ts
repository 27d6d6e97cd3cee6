/**
 * Builds the authentication and authorization plugins from the configuration, decides the
 * anonymous policy, and reloads the files on SIGHUP. Used by server.ts.
 */
import type { BrokerPlugin } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import type { AuthConfig, ListenerAuthConfig } from '../config/schema.js';
import { AclAuthorizer, AclFile } from './acl.js';
import { AccessAuthorizer } from './access-authorizer.js';
import type { AccessControl } from './access-control.js';
import { banPlugin, UserStoreAuth } from './access-plugins.js';
import { CertificateIdentity } from './certificate-identity.js';
import { firstAnswer } from './first-answer.js';
import { HttpAuth } from './http-auth.js';
import type { JwtAuth, JwtAuthOptions } from './jwt.js';
import { anonymousPolicy, scopedPlugin } from './listener-scope.js';
import { CredentialCache, DEFAULT_CREDENTIAL_CACHE_ENTRIES, DEFAULT_CREDENTIAL_CACHE_TTL_MS } from './credential-cache.js';
import { LoginBackoff } from './login-backoff.js';
import { PasswordFile, PasswordFileAuth } from './password-file.js';
import { DEFAULT_HASH_CONCURRENCY, HashQueue } from './password-hash.js';

/** A listener as security sees it: client certificates, and its own authentication if it has one. */
export interface SecuredListener {
  name: string;
  /** TLS with client certificates required: every client on it proved a certificate. */
  requireClientCert: boolean;
  /** Subject field of the client certificate that becomes the user name (password checks are then skipped). */
  usernameField?: string;
  /** Its own password file, ACL file and anonymous policy, instead of the global ones (per-listener settings). */
  auth?: ListenerAuthConfig;
}

/** What BrokerSecurity is built from. */
export interface BrokerSecurityInit {
  auth?: AuthConfig | undefined;
  /** The listeners (for client certificates and per-listener authentication). */
  listeners?: readonly SecuredListener[];
  /** Plugins given by an embedding application (run after the built-in ones). */
  plugins?: readonly BrokerPlugin[] | undefined;
  /** Whether the embedding application gave an `authenticate` function. */
  customAuthenticate?: boolean;
  /** Users, roles and bans managed at runtime (docs/security.md, "Order of evaluation"); absent: the files alone. */
  access?: AccessControl;
  logger: Logger;
}

/** A listener as the anonymous policy sees it. */
export interface ListenerPolicyInput {
  name: string;
  host: string;
  port: number;
  /** True for a TLS listener that requires client certificates: every client on it is authenticated. */
  authenticatesClients: boolean;
}

/** A refusal to start a listener without authentication. */
export class AnonymousListenerError extends Error {
  readonly code = 'ERR_ANONYMOUS_LISTENER';
}

/** Whether `host` is a loopback address (only this machine can connect). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** A password or ACL file in force, for reload. */
interface LoadedFile<T, P = { replace(file: T): void }> {
  file: string;
  plugin: P;
}

/** The security plugins in force and the anonymous policy. */
export class BrokerSecurity {
  /** Plugins in order: bans, certificate identity, JWT, password files (then auth.http's CONNECT check), runtime users, the application's, ACLs with runtime rules (then auth.http's PUBLISH / SUBSCRIBE checks), per-listener anonymous policy. */
  readonly plugins: BrokerPlugin[] = [];
  /** True when some authentication (password file, JWT, an application hook) is configured globally. */
  readonly authConfigured: boolean;
  /** Whether clients that no plugin accepted are let in (per listener: through the anonymous-per-listener plugin). */
  readonly allowAnonymous: boolean;

  private readonly custom: boolean;
  private readonly ownAuth = new Map<string, ListenerAuthConfig>();
  private readonly passwordFiles: Array<LoadedFile<PasswordFile, PasswordFileAuth>> = [];
  private readonly aclFiles: Array<LoadedFile<AclFile>> = [];
  private jwt: JwtAuth | undefined;
  private http: HttpAuth | undefined;
  private globalPasswords: PasswordFileAuth | undefined;
  /** One bound on the password hashes of every password file, since they share one thread pool. */
  private readonly hashQueue: HashQueue;

  private constructor(private readonly init: BrokerSecurityInit) {
    const auth = init.auth ?? {};
    this.hashQueue = new HashQueue(auth.hashConcurrency ?? DEFAULT_HASH_CONCURRENCY);
    this.custom = init.customAuthenticate === true || (init.plugins ?? []).some((p) => p.authenticate !== undefined);
    this.authConfigured = auth.passwordFile !== undefined || auth.jwt !== undefined || auth.http?.authenticateUrl !== undefined || this.custom;
    for (const listener of init.listeners ?? []) if (listener.auth !== undefined) this.ownAuth.set(listener.name, listener.auth);
    const globalAnonymous = auth.allowAnonymous ?? !this.authConfigured;
    // With per-listener settings the core lets nobody in anonymously; the last plugin decides per listener.
    this.allowAnonymous = this.ownAuth.size === 0 ? globalAnonymous : false;
  }

  /** Whether the global password file has this user (such a name cannot become a runtime user). */
  inPasswordFile(username: string): boolean {
    return this.globalPasswords?.has(username) === true;
  }

  /** Loads the configured files; throws (with the file and line) if one cannot be used. */
  static async create(init: BrokerSecurityInit): Promise<BrokerSecurity> {
    const security = new BrokerSecurity(init);
    await security.load();
    return security;
  }

  private async load(): Promise<void> {
    const auth = this.init.auth ?? {};
    const listeners = this.init.listeners ?? [];
    const backoff = new LoginBackoff(auth.loginBackoff ?? {});
    const own = (name: string): boolean => this.ownAuth.has(name);
    const access = this.init.access;
    // Bans come first, on every listener: a banned client gets no further (CONNACK 0x8A / 5).
    if (access !== undefined) this.plugins.push(banPlugin(() => access.state.banList, access.audit.stats, this.init.logger, (client) => access.disconnectBanned(client)));
    for (const listener of listeners.filter((l) => l.requireClientCert)) {
      const identity = new CertificateIdentity(listener.usernameField === undefined ? {} : { usernameField: listener.usernameField });
      this.plugins.push(scopedPlugin(identity, (name) => name === listener.name));
    }
    // With the certificate as the user name, a certificate client's CONNECT credentials are not consulted (as Mosquitto's use_identity_as_username).
    const certificateNames = new Set(listeners.filter((l) => l.usernameField !== undefined).map((l) => l.name));
    const credentials = (plugin: BrokerPlugin, applies: (name: string) => boolean): BrokerPlugin =>
      certificateNames.size === 0 && this.ownAuth.size === 0 && applies('*') ? plugin : scopedPlugin(plugin, (name) => applies(name) && !certificateNames.has(name), true);
    if (auth.jwt !== undefined) {
      const options: JwtAuthOptions = { ...auth.jwt, backoff };
      // jose is loaded only when JWT is configured.
      const { JwtAuth } = await import('./jwt.js');
      this.jwt = await JwtAuth.load(options);
      this.plugins.push(credentials(this.jwt, (name) => !own(name)));
    }
    // auth.http (docs/security.md): its CONNECT check follows the global password file, which then
    // decides only the users it knows; its PUBLISH / SUBSCRIBE checks follow the ACLs.
    const http = auth.http === undefined ? undefined : new HttpAuth(auth.http, this.init.logger, backoff);
    this.http = http;
    const httpAuthenticator = http?.authenticator;
    // Credentials are asked in one chain, each source deciding the names it knows and passing on the
    // others: the password file, then the runtime users, then the HTTP service. Only the last source
    // refuses a name nobody knows.
    const sources: BrokerPlugin[] = [];
    if (auth.passwordFile !== undefined) {
      this.globalPasswords = await this.loadPasswords(auth.passwordFile, backoff, 'global', httpAuthenticator === undefined && access === undefined ? 'refuse' : 'abstain');
      sources.push(this.globalPasswords);
    }
    if (access !== undefined) {
      // A name no source knows is refused as the password file refuses it, or when anonymous clients are
      // refused anyway (then a different answer would tell which names exist) — unless the HTTP
      // service, JWT or an application plugin may still accept it.
      const refuseUnknown = httpAuthenticator === undefined && (auth.passwordFile !== undefined || (auth.allowAnonymous === false && auth.jwt === undefined && !this.custom));
      sources.push(new UserStoreAuth({ users: () => access.state.users, inPasswordFile: (name) => this.globalPasswords?.has(name) === true, refuseUnknown, backoff }));
    }
    if (httpAuthenticator !== undefined) sources.push(httpAuthenticator);
    const chain = sources.reduce<BrokerPlugin | undefined>((first, next) => (first === undefined ? next : firstAnswer(first, next)), undefined);
    if (chain !== undefined) this.plugins.push(credentials(chain, (name) => !own(name)));
    for (const [name, listenerAuth] of this.ownAuth) {
      if (listenerAuth.passwordFile !== undefined) this.plugins.push(credentials(await this.loadPasswords(listenerAuth.passwordFile, backoff, name, 'refuse'), (n) => n === name));
    }
    if (this.init.plugins !== undefined) this.plugins.push(...this.init.plugins);
    if (access !== undefined) {
      const file = auth.aclFile === undefined ? undefined : await this.readAcl(auth.aclFile, 'global');
      const defaults = { anonymous: auth.defaultAccess?.anonymous ?? 'auto', authenticated: auth.defaultAccess?.authenticated ?? 'auto' } as const;
      const authorizer = new AccessAuthorizer(access.state, file, defaults);
      if (auth.aclFile !== undefined) this.aclFiles.push({ file: auth.aclFile, plugin: authorizer });
      this.plugins.push(this.ownAuth.size === 0 ? authorizer : scopedPlugin(authorizer, (name) => !own(name)));
    } else if (auth.aclFile !== undefined) {
      const acl = await this.loadAcl(auth.aclFile, 'global');
      this.plugins.push(this.ownAuth.size === 0 ? acl : scopedPlugin(acl, (name) => !own(name)));
    }
    if (http?.authorizer !== undefined) this.plugins.push(this.ownAuth.size === 0 ? http.authorizer : scopedPlugin(http.authorizer, (name) => !own(name)));
    for (const [name, listenerAuth] of this.ownAuth) {
      if (listenerAuth.aclFile !== undefined) this.plugins.push(scopedPlugin(await this.loadAcl(listenerAuth.aclFile, name), (n) => n === name));
    }
    if (this.ownAuth.size > 0) {
      const globalAnonymous = auth.allowAnonymous ?? !this.authConfigured;
      this.plugins.push(anonymousPolicy((name) => {
        const listenerAuth = this.ownAuth.get(name);
        return listenerAuth === undefined ? globalAnonymous : (listenerAuth.allowAnonymous ?? (listenerAuth.passwordFile === undefined && !this.custom));
      }));
    }
  }

  private async loadPasswords(path: string, backoff: LoginBackoff, scope: string, unknownUser: 'refuse' | 'abstain' = 'refuse'): Promise<PasswordFileAuth> {
    const file = await PasswordFile.load(path);
    const { credentialCache } = this.init.auth ?? {};
    const ttlSeconds = credentialCache?.ttlSeconds;
    const cache = new CredentialCache({
      maxEntries: credentialCache?.maxEntries ?? DEFAULT_CREDENTIAL_CACHE_ENTRIES,
      ttlMs: ttlSeconds === undefined ? DEFAULT_CREDENTIAL_CACHE_TTL_MS : ttlSeconds * 1000,
    });
    // With JWT too, a user name the file does not know may still present a token (JWT runs first and abstains on non-tokens).
    const plugin = new PasswordFileAuth(file, { backoff, unknownUser, cache, hashQueue: this.hashQueue });
    this.passwordFiles.push({ file: path, plugin });
    this.init.logger.info({ file: path, users: file.entries.size, ...(scope === 'global' ? {} : { listener: scope }) }, 'password file loaded');
    return plugin;
  }

  private async loadAcl(path: string, scope: string): Promise<AclAuthorizer> {
    const plugin = new AclAuthorizer(await this.readAcl(path, scope));
    this.aclFiles.push({ file: path, plugin });
    return plugin;
  }

  /** The HTTP authentication service (auth.http), for metrics; undefined without one. */
  get httpAuth(): HttpAuth | undefined {
    return this.http;
  }

  /** Aborts requests in flight to the HTTP authentication service (the server is closing). */
  close(): void {
    this.http?.close();
  }

  private async readAcl(path: string, scope: string): Promise<AclFile> {
    const file = await AclFile.load(path);
    this.init.logger.info({ file: path, users: file.users.size, patterns: file.patterns.length, ...(scope === 'global' ? {} : { listener: scope }) }, 'ACL file loaded');
    return file;
  }

  /**
   * Refuses (throws, after an error log saying why and what to do) a listener beyond loopback
   * when no client on it would have to authenticate and anonymous access was not asked for.
   */
  checkListener(listener: ListenerPolicyInput): void {
    if (isLoopbackHost(listener.host)) return;
    const own = this.ownAuth.get(listener.name);
    // `allowAnonymous: false` with runtime users: only the users managed through the API can connect.
    const runtimeOnly = this.init.access !== undefined && this.init.auth?.allowAnonymous === false;
    const authenticated = own === undefined ? this.init.auth?.allowAnonymous === true || this.authConfigured || runtimeOnly : own.allowAnonymous === true || own.passwordFile !== undefined || this.custom;
    if (authenticated || listener.authenticatesClients) return;
    const message =
      `refusing to listen on ${listener.host} port ${listener.port} (${listener.name}): no authentication is configured, so anyone who can reach it could connect. ` +
      'Configure authentication (--password-file FILE, JWT, or a TLS listener with --require-client-cert), ' +
      'listen on loopback only, or give --allow-anonymous ("auth": {"allowAnonymous": true}) to let anonymous clients in on purpose';
    this.init.logger.error({ listener: listener.name, host: listener.host, port: listener.port }, message);
    throw new AnonymousListenerError(message);
  }

  /**
   * Re-reads the password, ACL and JWT key files (SIGHUP). A file that cannot be read or parsed is
   * rejected with an error log and the rules already in force stay. Returns false if any failed.
   */
  async reload(): Promise<boolean> {
    const logger = this.init.logger;
    let ok = true;
    for (const { file, plugin } of this.passwordFiles) {
      try {
        const loaded = await PasswordFile.load(file);
        plugin.replace(loaded);
        // `remembered`: verified passwords kept (their users' entries did not change); the others were forgotten.
        logger.info({ file, users: loaded.entries.size, remembered: plugin.remembered }, 'password file reloaded');
      } catch (error) {
        ok = false;
        logger.error({ file, err: (error as Error).message }, 'password file not reloaded: the previous users stay in force');
      }
    }
    for (const { file, plugin } of this.aclFiles) {
      try {
        const loaded = await AclFile.load(file);
        plugin.replace(loaded);
        logger.info({ file, users: loaded.users.size, patterns: loaded.patterns.length }, 'ACL file reloaded');
      } catch (error) {
        ok = false;
        logger.error({ file, err: (error as Error).message }, 'ACL file not reloaded: the previous rules stay in force');
      }
    }
    if (this.jwt !== undefined) {
      try {
        await this.jwt.reload();
        logger.info({}, 'JWT keys reloaded');
      } catch (error) {
        ok = false;
        logger.error({ err: (error as Error).message }, 'JWT keys not reloaded: the previous keys stay in force');
      }
    }
    return ok;
  }
}
