import { startServer, type ServerOptions, type StarlingServer } from '../../src/server.js';

/** Starts a broker on a free loopback port with logging off (unless STARLING_TEST_LOG is set). */
export async function startTestBroker(options: ServerOptions = {}): Promise<StarlingServer> {
  const logLevel = (process.env['STARLING_TEST_LOG'] as ServerOptions['logLevel']) ?? 'silent';
  return startServer({ host: '127.0.0.1', port: 0, logLevel, ...options });
}
