#!/usr/bin/env node
import { ConfigError, loadConfig, usage } from '../config/config.js';
import { startServer } from '../server.js';

/** `starling`: runs the broker until SIGINT / SIGTERM. */
async function main(argv: string[]): Promise<number> {
  let commandLine;
  try {
    commandLine = loadConfig(argv);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`starling: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (commandLine.help) {
    process.stdout.write(usage());
    return 0;
  }
  const server = await startServer(commandLine.config);
  const stop = (signal: NodeJS.Signals): void => {
    server.logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`starling: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
