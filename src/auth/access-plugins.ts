/** The broker plugins of runtime access control: the ban check (first of all plugins) and authentication of runtime users. */
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin, ClientIdentity } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import type { StoredUser } from '../persistence/types.js';
import type { AccessStats } from './access-audit.js';
import type { BanList } from './bans.js';
import type { LoginBackoff } from './login-backoff.js';
import { DEFAULT_PBKDF2_ITERATIONS, parsePasswordHash, verifyPassword, type PasswordHash } from './password-hash.js';

/**
 * Refuses a banned client at CONNECT (CONNACK 0x8A / 5) by client id, CONNECT user name or address.
 * A user name that only authentication gives (a certificate's CN, a JWT claim) is checked once the
 * client is in, and a banned one is disconnected at once (`onBanned`).
 */
export function banPlugin(bans: () => BanList, stats: AccessStats, logger: Logger, onBanned: (client: ClientIdentity) => void): BrokerPlugin {
  return {
    name: 'bans',
    authenticate(request: AuthenticateRequest): AuthenticateResult {
      const list = bans();
      if (list.empty) return undefined;
      const ban = list.match(request.clientId, request.username, request.remoteAddress);
      if (ban === undefined) return undefined;
      stats.banned++;
      logger.info({ clientId: request.clientId, username: request.username, remote: request.remoteAddress, ban: ban.id, reason: ban.reason }, 'banned client refused');
      return 'banned';
    },
    onConnect(client: ClientIdentity): void {
      const list = bans();
      if (list.empty) return;
      const ban = list.match(client.clientId, client.username, client.remoteAddress);
      if (ban === undefined) return;
      stats.banned++;
      logger.info({ clientId: client.clientId, username: client.username, remote: client.remoteAddress, ban: ban.id, reason: ban.reason }, 'banned client disconnected: its authenticated user name is banned');
      onBanned(client);
    },
  };
}

/** Options of UserStoreAuth. */
export interface UserStoreAuthOptions {
  /** The runtime users, by name. */
  users: () => ReadonlyMap<string, StoredUser>;
  /** Whether a password file of its own decides this name (then this plugin abstains). */
  inPasswordFile: (username: string) => boolean;
  /** Whether a name no source knows is refused (bad credentials) rather than left to the anonymous policy. */
  refuseUnknown: boolean;
  backoff?: LoginBackoff;
}

/** Authenticates CONNECT user name and password against the users managed at runtime (hashed as in a password file). */
export class UserStoreAuth implements BrokerPlugin {
  readonly name = 'users';
  /** Parsed hashes by their text (a user's hash changes only with its password). */
  private readonly parsed = new Map<string, PasswordHash>();
  /** A hash no password matches, as costly as a real one: an unknown name takes as long as a known one. */
  private readonly dummy: PasswordHash = { kind: 'pbkdf2-sha512', iterations: DEFAULT_PBKDF2_ITERATIONS, salt: Buffer.alloc(12), hash: Buffer.alloc(64) };

  constructor(private readonly options: UserStoreAuthOptions) {}

  authenticate(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> {
    const username = request.username;
    if (username === undefined || this.options.inPasswordFile(username)) return undefined;
    const user = this.options.users().get(username);
    if (user === undefined && !this.options.refuseUnknown) return undefined;
    return this.check(request, user === undefined ? undefined : this.hashOf(user));
  }

  private hashOf(user: StoredUser): PasswordHash {
    let hash = this.parsed.get(user.passwordHash);
    if (hash === undefined) {
      if (this.parsed.size > 10_000) this.parsed.clear();
      hash = parsePasswordHash(user.passwordHash);
      this.parsed.set(user.passwordHash, hash);
    }
    return hash;
  }

  private async check(request: AuthenticateRequest, hash: PasswordHash | undefined): Promise<AuthenticateResult> {
    const ok = (await verifyPassword(hash ?? this.dummy, request.password ?? Buffer.alloc(0))) && hash !== undefined && request.password !== undefined;
    const backoff = this.options.backoff;
    if (ok) {
      backoff?.succeeded(request.remoteAddress);
      return 'accept';
    }
    return backoff === undefined ? 'bad-credentials' : backoff.refuse(request.remoteAddress, 'bad-credentials');
  }
}
