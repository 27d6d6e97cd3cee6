/**
 * Builds the authentication and authorization plugins from the configuration, decides the
 * anonymous policy, and reloads the files on SIGHUP. Used by server.ts.
 */
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import type { AuthConfig, TlsConfig } from '../config/security.js';
import { AclAuthorizer, AclFile } from './acl.js';
import { CertificateIdentity } from './certificate-identity.js';
import { JwtAuth, type JwtAuthOptions } from './jwt.js';
import { LoginBackoff } from './login-backoff.js';
import { PasswordFile, PasswordFileAuth } from './password-file.js';

/** What BrokerSecurity is built from. */
export interface BrokerSecurityInit {
  auth?: AuthConfig | undefined;
  tls?: TlsConfig | undefined;
  /** Plugins given by an embedding application (run after the built-in ones). */
  plugins?: readonly BrokerPlugin[] | undefined;
  /** Whether the embedding application gave an `authenticate` function. */
  customAuthenticate?: boolean;
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

/** The security plugins in force and the anonymous policy. */
export class BrokerSecurity {
  /** Plugins in order: certificate identity, JWT, password file, the application's, ACL. */
  readonly plugins: BrokerPlugin[] = [];
  /** True when some authentication (password file, JWT, an application hook) is configured. */
  readonly authConfigured: boolean;
  /** Whether clients that no plugin accepted are let in. */
  readonly allowAnonymous: boolean;

  private passwordAuth: PasswordFileAuth | undefined;
  private acl: AclAuthorizer | undefined;
  private jwt: JwtAuth | undefined;

  private constructor(private readonly init: BrokerSecurityInit) {
    const auth = init.auth ?? {};
    const custom = init.customAuthenticate === true || (init.plugins ?? []).some((p) => p.authenticate !== undefined);
    this.authConfigured = auth.passwordFile !== undefined || auth.jwt !== undefined || custom;
    this.allowAnonymous = auth.allowAnonymous ?? !this.authConfigured;
  }

  /** Loads the configured files; throws (with the file and line) if one cannot be used. */
  static async create(init: BrokerSecurityInit): Promise<BrokerSecurity> {
    const security = new BrokerSecurity(init);
    await security.load();
    return security;
  }

  private async load(): Promise<void> {
    const auth = this.init.auth ?? {};
    const tls = this.init.tls;
    const backoff = new LoginBackoff(auth.loginBackoff ?? {});
    let certificate: CertificateIdentity | undefined;
    if (tls?.requireClientCert === true) {
      certificate = new CertificateIdentity(tls.usernameField === undefined ? {} : { usernameField: tls.usernameField });
      this.plugins.push(certificate);
    }
    // With the certificate as the user name, a certificate client's CONNECT credentials are not consulted (as Mosquitto's use_identity_as_username).
    const credentials = (plugin: BrokerPlugin): BrokerPlugin => (certificate?.replacesUsername === true ? exceptCertificateClients(plugin) : plugin);
    if (auth.jwt !== undefined) {
      const options: JwtAuthOptions = { ...auth.jwt, backoff };
      this.jwt = await JwtAuth.load(options);
      this.plugins.push(credentials(this.jwt));
    }
    if (auth.passwordFile !== undefined) {
      const file = await PasswordFile.load(auth.passwordFile);
      // With JWT too, a user name the file does not know may still present a token (JWT runs first and abstains on non-tokens).
      this.passwordAuth = new PasswordFileAuth(file, { backoff, unknownUser: 'refuse' });
      this.plugins.push(credentials(this.passwordAuth));
      this.init.logger.info({ file: auth.passwordFile, users: file.entries.size }, 'password file loaded');
    }
    if (this.init.plugins !== undefined) this.plugins.push(...this.init.plugins);
    if (auth.aclFile !== undefined) {
      const file = await AclFile.load(auth.aclFile);
      this.acl = new AclAuthorizer(file);
      this.plugins.push(this.acl);
      this.init.logger.info({ file: auth.aclFile, users: file.users.size, patterns: file.patterns.length }, 'ACL file loaded');
    }
  }

  /**
   * Refuses (throws, after an error log saying why and what to do) a listener beyond loopback
   * when no client on it would have to authenticate and anonymous access was not asked for.
   */
  checkListener(listener: ListenerPolicyInput): void {
    if (isLoopbackHost(listener.host)) return;
    if (this.init.auth?.allowAnonymous === true || this.authConfigured || listener.authenticatesClients) return;
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
    const auth = this.init.auth ?? {};
    const logger = this.init.logger;
    let ok = true;
    if (this.passwordAuth !== undefined && auth.passwordFile !== undefined) {
      try {
        const file = await PasswordFile.load(auth.passwordFile);
        this.passwordAuth.replace(file);
        logger.info({ file: auth.passwordFile, users: file.entries.size }, 'password file reloaded');
      } catch (error) {
        ok = false;
        logger.error({ file: auth.passwordFile, err: (error as Error).message }, 'password file not reloaded: the previous users stay in force');
      }
    }
    if (this.acl !== undefined && auth.aclFile !== undefined) {
      try {
        const file = await AclFile.load(auth.aclFile);
        this.acl.replace(file);
        logger.info({ file: auth.aclFile, users: file.users.size, patterns: file.patterns.length }, 'ACL file reloaded');
      } catch (error) {
        ok = false;
        logger.error({ file: auth.aclFile, err: (error as Error).message }, 'ACL file not reloaded: the previous rules stay in force');
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

/** `plugin`, except that its authenticate hook abstains for clients identified by a certificate. */
function exceptCertificateClients(plugin: BrokerPlugin): BrokerPlugin {
  const wrapped: BrokerPlugin = {
    name: plugin.name,
    authenticate(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> {
      if (request.certificateSubject !== undefined) return undefined;
      return plugin.authenticate?.(request);
    },
  };
  if (plugin.authorizePublish !== undefined) wrapped.authorizePublish = plugin.authorizePublish.bind(plugin);
  if (plugin.authorizeSubscribe !== undefined) wrapped.authorizeSubscribe = plugin.authorizeSubscribe.bind(plugin);
  if (plugin.authorizeReceive !== undefined) wrapped.authorizeReceive = plugin.authorizeReceive.bind(plugin);
  return wrapped;
}
