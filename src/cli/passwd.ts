/**
 * `starling passwd [-c] [-b] [-D] [-I ITERATIONS] FILE USER [PASSWORD]` and `starling passwd -U FILE`:
 * manages a password file in Mosquitto's format, like `mosquitto_passwd` (the file works in either broker).
 */
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { invalidUsername, PasswordFile, PasswordFileError } from '../auth/password-file.js';
import { DEFAULT_PBKDF2_ITERATIONS, HashQueue, hashPassword, parsePasswordHash, type PasswordHash } from '../auth/password-hash.js';

const USAGE = `Usage: starling passwd [-c] [-b] [-D] [-I ITERATIONS] FILE USER [PASSWORD]
       starling passwd -U [-I ITERATIONS] FILE

Adds, changes or deletes a user in a password file (Mosquitto's format, readable by mosquitto).

  -c            create FILE (replacing any existing file)
  -b            batch mode: the password is the last argument instead of being prompted for
  -D            delete USER from FILE
  -I N          PBKDF2-SHA512 iterations of the new hash (default ${DEFAULT_PBKDF2_ITERATIONS})
  -U            hash every "user:password" line of a plaintext FILE in place (as mosquitto_passwd -U)
  -h, --help    show this help

Without -b the password is read twice from the terminal without echo (or once from the first
line of standard input when it is not a terminal).
`;

class PasswdUsageError extends Error {}

/** Runs the command; returns the process exit code. */
export async function runPasswd(argv: string[]): Promise<number> {
  try {
    await passwd(argv);
    return 0;
  } catch (error) {
    if (error instanceof PasswdUsageError) {
      process.stderr.write(`starling passwd: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`starling passwd: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function passwd(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        c: { type: 'boolean', short: 'c' },
        b: { type: 'boolean', short: 'b' },
        D: { type: 'boolean', short: 'D' },
        I: { type: 'string', short: 'I' },
        U: { type: 'boolean', short: 'U' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new PasswdUsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const create = values.c === true;
  const batch = values.b === true;
  const remove = values.D === true;
  const iterations = values.I === undefined ? DEFAULT_PBKDF2_ITERATIONS : Number(values.I);
  if (values.U === true) {
    if (create || batch || remove) throw new PasswdUsageError('-U cannot be used with -c, -b or -D');
    if (positionals.length !== 1) throw new PasswdUsageError('-U needs FILE only');
    await hashPlaintextFile(positionals[0] as string, iterations);
    return;
  }
  if (create && remove) throw new PasswdUsageError('-c and -D cannot be used together');
  const expected = batch ? 3 : 2;
  if (positionals.length !== expected) {
    throw new PasswdUsageError(batch ? '-b needs FILE, USER and PASSWORD' : 'expected FILE and USER (add -b to give the password as an argument)');
  }
  const [path, user, given] = positionals as [string, string, string | undefined];
  const problem = invalidUsername(user);
  if (problem !== undefined) throw new PasswdUsageError(problem);

  const file = create ? new PasswordFile() : await readExisting(path);
  if (remove) {
    if (!file.entries.delete(user)) throw new Error(`user ${user} is not in ${path}`);
  } else {
    const password = given ?? (await readPassword());
    if (password.length === 0) throw new Error('empty password');
    file.entries.set(user, await hashPassword(password, iterations));
  }
  await writeAtomically(path, file.serialize());
}

/**
 * `-U`: every `user:password` line becomes `user:$7$…` (blank lines and `#` comments are dropped).
 * A line that already holds a hash stops it: hashing a hash would lock that user out.
 */
async function hashPlaintextFile(path: string, iterations: number): Promise<void> {
  const lines = (await readFile(path, 'utf8')).split(/\r?\n/);
  const plain: [string, string][] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const colon = line.indexOf(':');
    const user = line.slice(0, Math.max(colon, 0));
    const problem = colon <= 0 ? 'expected "user:password"' : invalidUsername(user);
    if (problem !== undefined) throw new Error(`${path}:${i + 1}: ${problem}; the file was not changed`);
    const password = line.slice(colon + 1);
    if (password.length === 0) throw new Error(`${path}:${i + 1}: user "${user}": empty password; the file was not changed`);
    if (isHash(password)) throw new Error(`${path}:${i + 1}: user "${user}" already has a hash (is the file hashed already?); the file was not changed`);
    plain.push([user, password]);
  }
  // One hash per thread-pool thread at a time: thousands of users do not queue thousands of jobs at once.
  const queue = new HashQueue(Math.min(availableParallelism(), 4));
  const hashes = await Promise.all(plain.map(([, password]) => hashPassword(password, iterations, queue)));
  const file = new PasswordFile();
  plain.forEach(([user], i) => file.entries.set(user, hashes[i] as PasswordHash));
  await writeAtomically(path, file.serialize());
}

function isHash(text: string): boolean {
  try {
    parsePasswordHash(text);
    return true;
  } catch {
    return false;
  }
}

async function readExisting(path: string): Promise<PasswordFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path} does not exist (use -c to create it)`, { cause: error });
    throw error;
  }
  try {
    return PasswordFile.parse(text, path);
  } catch (error) {
    if (error instanceof PasswordFileError) throw new Error(`${error.message}; the file was not changed`, { cause: error });
    throw error;
  }
}

/** Writes beside the file and renames over it, so a reader (the broker on SIGHUP) never sees half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, text, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/**
 * A password from the terminal without echo (asked twice when `confirm`), or the first line of
 * standard input when it is not a terminal.
 */
export async function readPassword(prompt = 'Password: ', confirm = true): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    const line = await readLine(input, false);
    return line;
  }
  process.stderr.write(prompt);
  const first = await readLine(input, true);
  if (!confirm) {
    process.stderr.write('\n');
    return first;
  }
  process.stderr.write('\nReenter password: ');
  const second = await readLine(input, true);
  process.stderr.write('\n');
  if (first !== second) throw new Error('passwords do not match');
  return first;
}

/** Reads one line from `input`; in a terminal, without echo (raw mode). */
function readLine(input: NodeJS.ReadStream, hidden: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    if (hidden) input.setRawMode(true);
    input.resume();
    const finish = (error?: Error): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      if (hidden) input.setRawMode(false);
      input.pause();
      if (error !== undefined) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\n' || ch === '\r') {
          finish();
          return;
        }
        if (ch === '\u0003') {
          finish(new Error('interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    const onEnd = (): void => finish();
    input.on('data', onData);
    input.on('end', onEnd);
  });
}
