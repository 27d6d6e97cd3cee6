/** Explains EADDRINUSE: which process holds the port, as `ss -ltnp` shows it, or how to find it. */
import { execFile } from 'node:child_process';

/** A sentence naming the likely holder of host:port, or saying how to find it. */
export async function describePortHolder(port: number): Promise<string> {
  const howToFind = `find it with: ss -ltnp 'sport = :${port}' (or lsof -i :${port})`;
  const output = await new Promise<string | undefined>((resolve) => {
    execFile('ss', ['-H', '-ltnp', `sport = :${port}`], { timeout: 2000 }, (error, stdout) => resolve(error === null ? stdout : undefined));
  });
  if (output === undefined) return howToFind;
  const holders = [...output.matchAll(/\("([^"]+)",pid=(\d+)/g)].map((m) => `${m[1]} (pid ${m[2]})`);
  if (holders.length > 0) return `held by ${[...new Set(holders)].join(', ')} according to ss -ltnp`;
  if (output.trim() !== '') return `held by a process ss cannot name (another user's; run it as root: ss -ltnp 'sport = :${port}')`;
  return howToFind;
}
