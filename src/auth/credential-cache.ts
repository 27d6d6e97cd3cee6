/**
 * Recently verified password-file credentials, so a device that reconnects with the same user name
 * and password costs one HMAC instead of a PBKDF2 hash (reconnect storms, docs/security.md).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PasswordHash } from './password-hash.js';

/** Settings of CredentialCache; every field has a default. */
export interface CredentialCacheOptions {
  /** Most users remembered at once; the least recently seen is dropped first. 0 turns the cache off. */
  maxEntries?: number;
  /** An entry is forgotten this long after its user was last seen (verified, or its client disconnected), in milliseconds. */
  ttlMs?: number;
}

/** Default of `maxEntries`: a fleet of 100,000 devices with a user each. */
export const DEFAULT_CREDENTIAL_CACHE_ENTRIES = 100_000;
/** Default of `ttlMs`: one hour. */
export const DEFAULT_CREDENTIAL_CACHE_TTL_MS = 3_600_000;

interface Entry {
  /** HMAC-SHA256 of the user name and the password under the process's key. */
  tag: Buffer;
  /** The file entry the password was verified against: a changed entry makes the cache entry void. */
  hash: PasswordHash;
  expiresAt: number;
}

/**
 * One entry per user name: a keyed MAC of the password that was verified, never the password. The
 * key is random per process and never leaves it, so the tags are worthless elsewhere. Only
 * successful verifications are remembered: a wrong password never matches a tag and always pays
 * the full hash. Memory is bounded by `maxEntries` (least recently seen dropped first).
 */
export class CredentialCache {
  private readonly key = randomBytes(32);
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  /** Insertion order is recency order: a hit or a refresh re-inserts its user at the end. */
  private readonly entries = new Map<string, Entry>();

  constructor(options: CredentialCacheOptions = {}, private readonly now: () => number = Date.now) {
    this.maxEntries = options.maxEntries ?? DEFAULT_CREDENTIAL_CACHE_ENTRIES;
    this.ttlMs = options.ttlMs ?? DEFAULT_CREDENTIAL_CACHE_TTL_MS;
  }

  /** Users remembered now (expired entries included until they are looked up or evicted). */
  get size(): number {
    return this.entries.size;
  }

  /** False when configured off (`maxEntries` 0). */
  get enabled(): boolean {
    return this.maxEntries > 0 && this.ttlMs > 0;
  }

  /** The keyed MAC that stands for `password` of `user` (compare with `matches`). */
  tag(user: string, password: Buffer): Buffer {
    // The user name's length goes first so that no (user, password) pair can collide with another.
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(Buffer.byteLength(user));
    return createHmac('sha256', this.key).update(length).update(user).update(password).digest();
  }

  /**
   * True when `tag` (of this user's password) was verified against `hash`, the user's entry in the
   * file now, and has not expired. The comparison takes the same time wherever the tags differ.
   */
  matches(user: string, hash: PasswordHash, tag: Buffer): boolean {
    const entry = this.entries.get(user);
    if (entry === undefined) return false;
    const now = this.now();
    if (entry.hash !== hash || now >= entry.expiresAt) {
      this.entries.delete(user);
      return false;
    }
    if (!timingSafeEqual(entry.tag, tag)) return false;
    entry.expiresAt = now + this.ttlMs;
    this.entries.delete(user);
    this.entries.set(user, entry);
    return true;
  }

  /** Remembers that the password behind `tag` verified against `hash` for `user`. */
  add(user: string, hash: PasswordHash, tag: Buffer): void {
    if (!this.enabled) return;
    this.entries.delete(user);
    this.entries.set(user, { tag, hash, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** `user` was seen (its client disconnected): its entry, if any, lives another `ttlMs`. */
  refresh(user: string): void {
    const entry = this.entries.get(user);
    if (entry === undefined) return;
    entry.expiresAt = this.now() + this.ttlMs;
    this.entries.delete(user);
    this.entries.set(user, entry);
  }

  /**
   * After a reload: keeps the entries whose user still has the same hash in `users` (bound to the
   * new file's entry) and drops the others (user removed, password changed, iterations changed).
   */
  retain(users: ReadonlyMap<string, PasswordHash>): void {
    for (const [user, entry] of this.entries) {
      const hash = users.get(user);
      if (hash !== undefined && sameHash(hash, entry.hash)) entry.hash = hash;
      else this.entries.delete(user);
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.entries.clear();
  }
}

function sameHash(a: PasswordHash, b: PasswordHash): boolean {
  if (a.kind !== b.kind || !a.salt.equals(b.salt) || !a.hash.equals(b.hash)) return false;
  return a.kind === 'sha512' || (b.kind === 'pbkdf2-sha512' && a.iterations === b.iterations);
}
