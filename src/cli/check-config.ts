/** `starling check-config FILE`: checks a configuration without starting anything; exit 0 and a summary, or exit 2 and every error. */
import { ConfigError, loadConfig, type StarlingConfig } from '../config/config.js';
import { unreadableFiles } from '../config/file-check.js';
import { planListeners, type PlannedListener } from '../config/listeners.js';
import { HTTP_AUTH_DEFAULTS } from '../config/schema.js';

const USAGE = `Usage: starling check-config FILE [broker flags]
       starling check-config --mosquitto-conf FILE

Checks a configuration (Starling JSON with comments, or a mosquitto.conf) together with the STARLING_*
environment variables and any broker flags, as "starling --config FILE" would read it, and that every
file it names can be read. Prints a summary and exits 0, or prints every error and exits 2.
Nothing is started.
`;

/** Runs `starling check-config …`; returns the exit code. */
export function runCheckConfig(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return Promise.resolve(0);
  }
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(`starling check-config: name a configuration file\n\n${USAGE}`);
    return Promise.resolve(2);
  }
  const args = first.startsWith('-') ? argv : ['--config', first, ...rest];
  let loaded;
  try {
    loaded = loadConfig(args);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return Promise.resolve(fail(error.errors));
  }
  if (loaded.help) {
    process.stdout.write(USAGE);
    return Promise.resolve(0);
  }
  const missing = unreadableFiles(loaded.config);
  if (missing.length > 0) return Promise.resolve(fail(missing));
  process.stdout.write(summary(loaded.config, loaded.sources, loaded.warnings));
  return Promise.resolve(0);
}

function fail(errors: readonly string[]): number {
  process.stderr.write(`configuration is not valid: ${errors.length} error${errors.length === 1 ? '' : 's'}\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
  return 2;
}

/** What the configuration sets up, in a few lines. */
export function summary(config: StarlingConfig, sources: readonly string[], warnings: readonly string[]): string {
  const lines = ['configuration is valid', `read from: ${sources.length === 0 ? 'defaults only' : sources.join(', ')}`, 'listeners:'];
  lines.push(...planListeners(config).map(listenerLine));
  const auth = config.auth;
  const anonymous = auth?.allowAnonymous === undefined ? 'only without authentication' : auth.allowAnonymous ? 'allowed' : 'refused';
  lines.push(`auth: ${auth?.passwordFile === undefined ? 'no password file' : `password file ${auth.passwordFile}`}, ${auth?.aclFile === undefined ? 'no ACL file' : `ACL file ${auth.aclFile}`}${auth?.jwt === undefined ? '' : ', JWT'}${httpAuthText(auth?.http)}; anonymous clients ${anonymous}`);
  lines.push(`store: ${config.cluster !== undefined ? `Redis cluster ${config.cluster.redis}` : config.store === 'memory' ? 'memory (nothing survives a restart)' : `embedded in ${config.dataDir} (durability ${config.durability})`}`);
  lines.push(`http: ${config.http.enabled ? `${config.http.host}:${config.http.port}` : 'off'}; $SYS every ${config.sys.interval} s`);
  lines.push(`limits: maxConnections ${config.limits.maxConnections}, maxInflight ${config.limits.maxInflight}, maxQueuedMessages ${config.limits.maxQueuedMessages}, maxPacketSize ${config.limits.maxPacketSize}, maxKeepAlive ${config.limits.maxKeepAlive}`);
  for (const b of config.bridges) lines.push(`bridge ${b.name}: ${b.url}, ${b.topics.map((t) => `${t.pattern} ${t.direction} qos ${t.qos}`).join('; ')}`);
  for (const w of config.webhooks) lines.push(`webhook ${w.name}: ${w.url}, ${w.events.join(', ')}${w.topics === undefined || w.topics.length === 0 ? '' : ` on ${w.topics.join(', ')}`}${w.secret === undefined ? '' : ', signed'}`);
  if (warnings.length > 0) lines.push(`warnings (${warnings.length}):`, ...warnings.map((w) => `  ${w}`));
  return `${lines.join('\n')}\n`;
}

function httpAuthText(http: NonNullable<StarlingConfig['auth']>['http']): string {
  if (http === undefined) return '';
  const asks = [http.authenticateUrl === undefined ? '' : 'connect', http.publishUrl === undefined ? '' : 'publish', http.subscribeUrl === undefined ? '' : 'subscribe'].filter((x) => x !== '');
  return `, HTTP service for ${asks.join(' / ')} (on failure: ${http.onFailure ?? HTTP_AUTH_DEFAULTS.onFailure})`;
}

function listenerLine(l: PlannedListener): string {
  const where = l.hosts.map((h) => (h.includes(':') ? `[${h}]:${l.port}` : `${h}:${l.port}`)).join(', ');
  const notes: string[] = [];
  if (l.tls?.requireClientCert === true) notes.push('client certificates required');
  if (l.tls?.usernameField !== undefined) notes.push(`user name from certificate ${l.tls.usernameField}`);
  if (l.ws !== undefined) notes.push(`path ${l.ws.path}`);
  if (l.maxConnections !== undefined) notes.push(`at most ${l.maxConnections} connections`);
  if (l.auth !== undefined) notes.push(`own auth (${[l.auth.passwordFile === undefined ? '' : `password file ${l.auth.passwordFile}`, l.auth.aclFile === undefined ? '' : `ACL ${l.auth.aclFile}`, `anonymous ${l.auth.allowAnonymous === true ? 'allowed' : 'refused'}`].filter((x) => x !== '').join(', ')})`);
  return `  ${l.name.padEnd(14)} ${l.protocol.padEnd(5)} ${where}${notes.length === 0 ? '' : `  ${notes.join('; ')}`}`;
}
