/**
 * Mosquitto's password file (`user:$7$…` lines, as written by `mosquitto_passwd`) and the
 * authentication plugin that checks CONNECT credentials against it.
 */
import { readFile } from 'node:fs/promises';
import { timingSafeEqual } from 'node:crypto';
import type { AuthExchange, AuthenticateRequest, AuthenticateResult, BrokerPlugin, ClientIdentity, EnhancedAuthResult } from '../broker/hooks.js';
import type { CredentialCache } from './credential-cache.js';
import type { LoginBackoff } from './login-backoff.js';
import { SCRAM_SHA_512, ScramError, scramServerFinal, scramServerFirst, type ScramServerState } from './scram.js';
import { DEFAULT_PBKDF2_ITERATIONS, formatPasswordHash, parsePasswordHash, PasswordHashError, verifyPassword, type HashQueue, type PasswordHash } from './password-hash.js';

/** A password file that cannot be used, with the line at fault. */
export class PasswordFileError extends Error {
  readonly code = 'ERR_PASSWORD_FILE';
}

/** The users of a password file, in file order. */
export class PasswordFile {
  readonly entries = new Map<string, PasswordHash>();

  /** Parses the file text; `source` names it in error messages. Blank lines and `#` comments are skipped. */
  static parse(text: string, source = 'password file'): PasswordFile {
    const file = new PasswordFile();
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new PasswordFileError(`${source}:${i + 1}: expected "user:hash"`);
      const user = line.slice(0, colon);
      try {
        file.entries.set(user, parsePasswordHash(line.slice(colon + 1)));
      } catch (error) {
        if (error instanceof PasswordHashError) throw new PasswordFileError(`${source}:${i + 1}: user "${user}": ${error.message}`);
        throw error;
      }
    }
    return file;
  }

  /** Reads and parses a file. */
  static async load(path: string): Promise<PasswordFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new PasswordFileError(`cannot read password file ${path}: ${(error as Error).message}`);
    }
    return PasswordFile.parse(text, path);
  }

  /** The file text: one `user:hash` line per user. */
  serialize(): string {
    let out = '';
    for (const [user, hash] of this.entries) out += `${user}:${formatPasswordHash(hash)}\n`;
    return out;
  }
}

/** Why a user name cannot go in a password file, or undefined when it can. */
export function invalidUsername(user: string): string | undefined {
  if (user.length === 0) return 'user name is empty';
  if (user.includes(':')) return 'user name must not contain ":"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(user)) return 'user name must not contain control characters';
  if (user.trim() !== user) return 'user name must not start or end with white space';
  if (Buffer.byteLength(user) > 65_535) return 'user name is longer than 65535 bytes';
  return undefined;
}

/** Options of PasswordFileAuth. */
export interface PasswordFileAuthOptions {
  /** Delays refusals per client address. */
  backoff?: LoginBackoff;
  /**
   * What to answer a user name the file does not know: 'refuse' (bad credentials, the default)
   * or 'abstain' (let later plugins decide).
   */
  unknownUser?: 'refuse' | 'abstain';
  /** Remembers verified credentials, so a reconnect with the same password skips the hash; none: every CONNECT pays it. */
  cache?: CredentialCache;
  /** Bounds the hashes computed at once (one queue for every password file of a broker). */
  hashQueue?: HashQueue;
}

/** A verification in progress: later CONNECTs with the same user and password wait for it instead of hashing again. */
interface Verification {
  hash: PasswordHash;
  tag: Buffer;
  result: Promise<boolean>;
}

/** Checks CONNECT user name and password against a password file; abstains when no user name is given. */
export class PasswordFileAuth implements BrokerPlugin {
  readonly name = 'password-file';
  private file: PasswordFile;
  private dummy: PasswordHash;
  private readonly verifying = new Map<string, Verification>();

  constructor(
    file: PasswordFile,
    private readonly options: PasswordFileAuthOptions = {},
  ) {
    this.file = file;
    this.dummy = dummyHash(file);
  }

  /**
   * Swaps in a newly loaded file (SIGHUP): connected clients are not affected. Remembered
   * credentials of users whose entry changed or went are forgotten.
   */
  replace(file: PasswordFile): void {
    this.file = file;
    this.dummy = dummyHash(file);
    this.options.cache?.retain(file.entries);
  }

  /** Whether the file in force has this user. */
  has(username: string): boolean {
    return this.file.entries.has(username);
  }

  /** Number of users in the file in force. */
  get size(): number {
    return this.file.entries.size;
  }

  /** Users whose verified password is remembered now (0 without a cache). */
  get remembered(): number {
    return this.options.cache?.size ?? 0;
  }

  /** MQTT 5 enhanced authentication against the same users (`$7$` entries). */
  readonly authMethods = [SCRAM_SHA_512] as const;

  /** One step of SCRAM-SHA-512: client-first → server-first (continue), client-final → server-final (accept). */
  authenticateEnhanced(exchange: AuthExchange, data: Buffer | undefined): EnhancedAuthResult {
    const state = exchange.state as { scram?: ScramServerState };
    try {
      if (state.scram === undefined) {
        const { serverFirst, state: next } = scramServerFirst((data ?? Buffer.alloc(0)).toString('utf8'), (username) => {
          const hash = this.file.entries.get(username);
          return hash?.kind === 'pbkdf2-sha512' ? { salt: hash.salt, iterations: hash.iterations, saltedPassword: hash.hash } : undefined;
        });
        state.scram = next;
        return { continue: Buffer.from(serverFirst) };
      }
      const serverFinal = scramServerFinal((data ?? Buffer.alloc(0)).toString('utf8'), state.scram);
      if (serverFinal === undefined) return 'bad-credentials';
      return { accept: true, username: state.scram.username, data: Buffer.from(serverFinal) };
    } catch (error) {
      if (error instanceof ScramError) return 'bad-credentials';
      throw error;
    }
  }

  authenticate(request: AuthenticateRequest): AuthenticateResult | Promise<AuthenticateResult> {
    const username = request.username;
    if (username === undefined) return undefined;
    const hash = this.file.entries.get(username);
    if (hash === undefined && this.options.unknownUser === 'abstain') return undefined;
    const cache = this.options.cache;
    if (hash === undefined || request.password === undefined || cache?.enabled !== true) return this.check(request, hash, this.hash(hash ?? this.dummy, request.password ?? Buffer.alloc(0)));
    const tag = cache.tag(username, request.password);
    if (cache.matches(username, hash, tag)) {
      // Verified before with this very password: one HMAC instead of the hash, answered at once.
      this.options.backoff?.succeeded(request.remoteAddress);
      return 'accept';
    }
    return this.check(request, hash, this.verify(username, hash, request.password, tag, cache));
  }

  /** Observer: a client of this user disconnected; its remembered credentials live on from now. */
  onDisconnect(client: ClientIdentity): void {
    if (client.username !== undefined) this.options.cache?.refresh(client.username);
  }

  private hash(hash: PasswordHash, password: Buffer): Promise<boolean> {
    return verifyPassword(hash, password, this.options.hashQueue);
  }

  /** The full hash (shared with a verification of the same password in progress); remembered if right. */
  private verify(username: string, hash: PasswordHash, password: Buffer, tag: Buffer, cache: CredentialCache): Promise<boolean> {
    const running = this.verifying.get(username);
    if (running !== undefined && running.hash === hash && timingSafeEqual(running.tag, tag)) return running.result;
    const result = this.hash(hash, password).then((ok) => {
      if (ok) cache.add(username, hash, tag);
      return ok;
    });
    const verification = { hash, tag, result };
    this.verifying.set(username, verification);
    const done = (): void => {
      if (this.verifying.get(username) === verification) this.verifying.delete(username);
    };
    result.then(done, done);
    return result;
  }

  private async check(request: AuthenticateRequest, hash: PasswordHash | undefined, verified: Promise<boolean>): Promise<AuthenticateResult> {
    // An unknown user costs the same hash as a known one (the dummy), so timing does not tell which users exist.
    const ok = (await verified) && hash !== undefined && request.password !== undefined;
    const backoff = this.options.backoff;
    if (ok) {
      backoff?.succeeded(request.remoteAddress);
      return 'accept';
    }
    return backoff === undefined ? 'bad-credentials' : backoff.refuse(request.remoteAddress, 'bad-credentials');
  }
}

/** A hash no password matches, as costly as the file's first PBKDF2 entry. */
function dummyHash(file: PasswordFile): PasswordHash {
  let iterations = DEFAULT_PBKDF2_ITERATIONS;
  for (const hash of file.entries.values()) {
    if (hash.kind === 'pbkdf2-sha512') {
      iterations = hash.iterations;
      break;
    }
  }
  return { kind: 'pbkdf2-sha512', iterations, salt: Buffer.alloc(12), hash: Buffer.alloc(64) };
}
