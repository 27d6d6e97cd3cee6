/** The client subcommands of `starling` (pub, sub, bench): loaded only when one is asked for. */
import { ClientClosedError, MqttClientError } from '../client/index.js';
import { exitCodeFor, UsageError } from './exit-codes.js';

/** Names `starling CMD …` dispatches here. */
export const SUBCOMMANDS = ['pub', 'sub', 'bench'] as const;
/** One of SUBCOMMANDS. */
export type Subcommand = (typeof SUBCOMMANDS)[number];

/** Runs a subcommand and turns any error into a one-line message on stderr and its exit code. */
export async function runSubcommand(name: Subcommand, argv: string[]): Promise<number> {
  const quiet = argv.includes('--quiet');
  try {
    switch (name) {
      case 'pub':
        return await (await import('./pub.js')).runPub(argv);
      case 'sub':
        return await (await import('./sub.js')).runSub(argv);
      case 'bench':
        return await (await import('./bench/bench.js')).runBench(argv);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const hint = error instanceof UsageError ? ` (see starling ${name} --help)` : '';
    const code = error instanceof MqttClientError && !(error instanceof ClientClosedError) ? ` [${error.code}]` : '';
    if (!quiet) process.stderr.write(`starling ${name}: ${message}${code}${hint}\n`);
    return exitCodeFor(error);
  }
}
