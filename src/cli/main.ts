#!/usr/bin/env node
/** `starling`: the broker (default), its client and maintenance subcommands, --version and --help. */
import { ConfigError, loadConfig, usage } from '../config/config.js';
import type { StarlingConfig } from '../config/schema.js';
import { startServer } from '../server.js';
import { isWorkerProcess, startWorker, startWorkerGroup, workerCount } from '../worker-group.js';
import { STARLING_VERSION } from '../web-services.js';

/** How long a clean shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 15_000;

/** `starling [options]`: runs the broker until SIGINT / SIGTERM. */
async function main(argv: string[]): Promise<number> {
  let commandLine;
  try {
    commandLine = loadConfig(argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`starling: ${error.errors.length > 1 ? `${error.errors.length} configuration errors:\n  ` : ''}${error.errors.join('\n  ')}\n`);
      return 2;
    }
    throw error;
  }
  if (commandLine.help) {
    process.stdout.write(usage());
    return 0;
  }
  if (isWorkerProcess() || workerCount(commandLine.config) > 1) return runGroup(commandLine.config, commandLine.warnings);
  // Signals are taken from the start: one that arrives while listeners open stops the broker once it is up.
  const state: { server?: Awaited<ReturnType<typeof startServer>>; pending?: NodeJS.Signals } = {};
  const stop = (signal: NodeJS.Signals): void => {
    const running = state.server;
    if (running === undefined) {
      state.pending = signal;
      return;
    }
    running.logger.info({ signal }, 'shutting down');
    // A shutdown that hangs (a peer that never lets go, a store that never answers) still ends, and
    // says what it waited for.
    const deadline = setTimeout(() => {
      running.logger.error({ waitingFor: running.closing() }, `shutdown still not done after ${SHUTDOWN_GRACE_MS / 1000} s: exiting anyway`);
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    deadline.unref();
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        running.logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const started = await startServer({ ...commandLine.config, warnings: commandLine.warnings });
  state.server = started;
  if (state.pending !== undefined) stop(state.pending);
  // SIGHUP re-reads the password, ACL and JWT key files and the TLS certificates; connections stay open.
  process.on('SIGHUP', () => {
    started.logger.info({ signal: 'SIGHUP' }, 'reloading security files and certificates');
    void started.reload().catch((error: unknown) => started.logger.error({ err: error }, 'reload failed'));
  });
  return -1;
}

/**
 * `starling --workers N`: in the primary, the group (stopped by SIGINT / SIGTERM, SIGHUP passed on to
 * the workers); in a worker, its broker (stopped by the primary's SIGTERM; a terminal's SIGINT reaches
 * the whole process group, and the primary decides).
 */
async function runGroup(config: StarlingConfig, warnings: readonly string[]): Promise<number> {
  const pending: NodeJS.Signals[] = [];
  const early = (signal: NodeJS.Signals): void => void pending.push(signal);
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  const running = isWorkerProcess() ? await startWorker(config, warnings) : await startWorkerGroup(config, warnings);
  process.off('SIGINT', early);
  process.off('SIGTERM', early);
  const stop = (signal: NodeJS.Signals): void => {
    running.logger.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        running.logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  if (isWorkerProcess()) process.on('SIGINT', () => {});
  else process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.on('SIGHUP', () => {
    if ('reload' in running && typeof running.reload === 'function') void Promise.resolve(running.reload()).catch(() => undefined);
  });
  const first = pending.find((signal) => signal === 'SIGTERM' || !isWorkerProcess());
  if (first !== undefined) stop(first);
  return -1;
}

/** `starling pub|sub|bench|passwd|data|ctl|check-config …` runs a subcommand; anything else (no word, or a leading flag) runs the broker. */
function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === 'pub' || first === 'sub' || first === 'bench') {
    return import('./commands.js').then((commands) => commands.runSubcommand(first, rest));
  }
  if (first === 'passwd') return import('./passwd.js').then((passwd) => passwd.runPasswd(rest));
  if (first === 'data') return import('./data.js').then((data) => data.runData(rest));
  if (first === 'ctl') return import('./ctl.js').then((ctl) => ctl.runCtl(rest));
  if (first === 'check-config') return import('./check-config.js').then((check) => check.runCheckConfig(rest));
  if (first === 'version' || argv.includes('--version') || argv.includes('-V')) {
    process.stdout.write(`starling ${STARLING_VERSION} (Node.js ${process.versions.node})\n`);
    return Promise.resolve(0);
  }
  return main(argv);
}

dispatch(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`starling: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  },
);
