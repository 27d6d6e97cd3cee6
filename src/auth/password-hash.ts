/**
 * Password hashes in Mosquitto's password-file formats, so a file made by `mosquitto_passwd` works
 * unchanged and a file made by `starling passwd` works in Mosquitto:
 *
 * - `$6$SALT$HASH`: SHA-512 over the password followed by the salt (Mosquitto 1.x).
 * - `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512, 64-byte output (Mosquitto 2.x).
 *
 * SALT and HASH are standard base64. The salt is 12 bytes, as Mosquitto expects.
 */
import { createHash, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

/** PBKDF2 iterations for new entries: see docs/security.md for the measured cost and why. */
export const DEFAULT_PBKDF2_ITERATIONS = 20_000;
/** PBKDF2 computations handed to the thread pool at once by default: see docs/security.md for the measured trade. */
export const DEFAULT_HASH_CONCURRENCY = 2;
/** Fewest iterations `hashPassword` accepts. */
export const MIN_PBKDF2_ITERATIONS = 1_000;
/** Most iterations a file entry may declare (bounds the cost of one CONNECT). */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;

const SALT_BYTES = 12;
const HASH_BYTES = 64;

/** A parsed password hash. */
export type PasswordHash =
  | { kind: 'sha512'; salt: Buffer; hash: Buffer }
  | { kind: 'pbkdf2-sha512'; iterations: number; salt: Buffer; hash: Buffer };

/** A hash string that is not one of the supported formats. */
export class PasswordHashError extends Error {
  readonly code = 'ERR_PASSWORD_HASH';
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64.test(text)) throw new PasswordHashError(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** Parses `$6$…` or `$7$…`; anything else (plaintext included) is refused. */
export function parsePasswordHash(text: string): PasswordHash {
  const parts = text.split('$');
  if (parts[0] !== '' || parts.length < 4) throw new PasswordHashError('not a $6$ or $7$ hash (plaintext passwords are not accepted)');
  if (parts[1] === '6' && parts.length === 4) {
    const salt = decodeBase64(parts[2] ?? '', 'salt');
    const hash = decodeBase64(parts[3] ?? '', 'hash');
    if (hash.length !== HASH_BYTES) throw new PasswordHashError(`$6$ hash must be ${HASH_BYTES} bytes`);
    return { kind: 'sha512', salt, hash };
  }
  if (parts[1] === '7' && parts.length === 5) {
    const iterations = Number(parts[2]);
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
      throw new PasswordHashError(`$7$ iteration count must be an integer from 1 to ${MAX_PBKDF2_ITERATIONS}`);
    }
    const salt = decodeBase64(parts[3] ?? '', 'salt');
    const hash = decodeBase64(parts[4] ?? '', 'hash');
    if (hash.length !== HASH_BYTES) throw new PasswordHashError(`$7$ hash must be ${HASH_BYTES} bytes`);
    return { kind: 'pbkdf2-sha512', iterations, salt, hash };
  }
  throw new PasswordHashError(`unsupported hash type "$${parts[1] ?? ''}$" (supported: $6$, $7$)`);
}

/** Formats a hash as it appears after `user:` in the file. */
export function formatPasswordHash(hash: PasswordHash): string {
  if (hash.kind === 'sha512') return `$6$${hash.salt.toString('base64')}$${hash.hash.toString('base64')}`;
  return `$7$${hash.iterations}$${hash.salt.toString('base64')}$${hash.hash.toString('base64')}`;
}

/**
 * Hands at most `concurrency` PBKDF2 computations to libuv's thread pool at once; the others wait
 * here, in arrival order. The pool (4 threads unless UV_THREADPOOL_SIZE says otherwise) also runs
 * file reads, the embedded store's commits and DNS lookups: without a bound, a storm of password
 * CONNECTs queues thousands of hashes ahead of them (docs/security.md).
 */
export class HashQueue {
  private running = 0;
  private waiting: (() => void)[] = [];
  private head = 0;

  constructor(readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`hash concurrency must be a positive integer, got ${concurrency}`);
  }

  /** Computations waiting for a turn (not yet handed to the pool). */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Runs `job` once fewer than `concurrency` jobs are running. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await job();
    } finally {
      this.next();
    }
  }

  private next(): void {
    if (this.head === this.waiting.length) {
      this.running--;
      return;
    }
    // The finished job's slot passes straight to the next in line (running stays the same).
    const resolve = this.waiting[this.head++] as () => void;
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    resolve();
  }
}

function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number, queue?: HashQueue): Promise<Buffer> {
  // Asynchronous: the work runs on libuv's thread pool, so a CONNECT never blocks the event loop.
  const compute = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      pbkdf2(password, salt, iterations, HASH_BYTES, 'sha512', (error, key) => (error === null ? resolve(key) : reject(error)));
    });
  return queue === undefined ? compute() : queue.run(compute);
}

/** Computes a new `$7$` (PBKDF2-SHA512) hash with a random salt; `queue` bounds the hashes computed at once. */
export async function hashPassword(password: string | Buffer, iterations = DEFAULT_PBKDF2_ITERATIONS, queue?: HashQueue): Promise<PasswordHash> {
  if (!Number.isInteger(iterations) || iterations < MIN_PBKDF2_ITERATIONS || iterations > MAX_PBKDF2_ITERATIONS) {
    throw new PasswordHashError(`iterations must be an integer from ${MIN_PBKDF2_ITERATIONS} to ${MAX_PBKDF2_ITERATIONS}`);
  }
  const salt = randomBytes(SALT_BYTES);
  const hash = await pbkdf2Async(toBuffer(password), salt, iterations, queue);
  return { kind: 'pbkdf2-sha512', iterations, salt, hash };
}

/**
 * Whether `password` matches `hash`; the comparison takes the same time wherever the bytes differ.
 * `queue` bounds the PBKDF2 computations handed to the thread pool at once.
 */
export async function verifyPassword(hash: PasswordHash, password: string | Buffer, queue?: HashQueue): Promise<boolean> {
  const candidate = toBuffer(password);
  let computed: Buffer;
  if (hash.kind === 'sha512') {
    computed = createHash('sha512').update(candidate).update(hash.salt).digest();
  } else {
    computed = await pbkdf2Async(candidate, hash.salt, hash.iterations, queue);
  }
  return computed.length === hash.hash.length && timingSafeEqual(computed, hash.hash);
}

function toBuffer(password: string | Buffer): Buffer {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}
