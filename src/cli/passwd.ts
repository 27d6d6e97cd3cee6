/**
 * `starling passwd [-c] [-b] [-D] [-I ITERATIONS] FILE USER [PASSWORD]`: manages a password file in
 * Mosquitto's format, like `mosquitto_passwd` (the file works in either broker).
 */
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { invalidUsername, PasswordFile, PasswordFileError } from '../auth/password-file.js';
import { DEFAULT_PBKDF2_ITERATIONS, hashPassword } from '../auth/password-hash.js';

const USAGE = `Usage: starling passwd [-c] [-b] [-D] [-I ITERATIONS] FILE USER [PASSWORD]

Adds, changes or deletes a user in a password file (Mosquitto's format, readable by mosquitto).

  -c            create FILE (replacing any existing file)
  -b            batch mode: the password is the last argument instead of being prompted for
  -D            delete USER from FILE
  -I N          PBKDF2-SHA512 iterations of the new hash (default ${DEFAULT_PBKDF2_ITERATIONS})
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
  if (create && remove) throw new PasswdUsageError('-c and -D cannot be used together');
  const expected = batch ? 3 : 2;
  if (positionals.length !== expected) {
    throw new PasswdUsageError(batch ? '-b needs FILE, USER and PASSWORD' : 'expected FILE and USER (add -b to give the password as an argument)');
  }
  const [path, user, given] = positionals as [string, string, string | undefined];
  const problem = invalidUsername(user);
  if (problem !== undefined) throw new PasswdUsageError(problem);
  const iterations = values.I === undefined ? DEFAULT_PBKDF2_ITERATIONS : Number(values.I);

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
