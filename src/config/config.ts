/**
 * Loads the configuration: schema defaults, then a file (Starling JSON with comments, or a
 * mosquitto.conf), then STARLING_* environment variables, then command-line flags. Each layer is
 * checked on its own so a message names where a bad value came from; then they are merged and the
 * cross-key checks run. Every problem is reported at once.
 */
import { checkBridges } from './bridges.js';
import { crossCheck } from './checks.js';
import { ConfigError } from './config-error.js';
import { readConfigFile } from './config-file.js';
import { envLayer } from './env.js';
import { brokerUsage, parseFlags } from './flags.js';
import { checkHttpAuth, checkWebhooks } from './http-services.js';
import { checkLayer, deepMerge, issueMessage, objectLayer, within, type Layer } from './layer.js';
import { SCHEMA, schemaDefaults, type HttpAuthConfig, type StarlingConfig } from './schema.js';
import { check, pathText, type Issue, type Path } from './setting.js';

export { ConfigError } from './config-error.js';
export { LOG_LEVELS, type StarlingConfig, type LogLevel, type LimitsConfig, type FeaturesConfig, type ClusterConfig, type ListenerConfig, type BridgeConfig, type WebhookConfig, type HttpAuthConfig } from './schema.js';

/** Every default, from the schema. */
export const DEFAULT_CONFIG: Readonly<StarlingConfig> = schemaDefaults();

/** Help text for the broker command (flags and subcommands). */
export function usage(): string {
  return brokerUsage();
}

/** A loaded configuration, with the warnings to log at start (untranslated Mosquitto options, unknown variables). */
export interface LoadedConfig {
  help: false;
  config: StarlingConfig;
  warnings: string[];
  /** Where the configuration came from, for check-config: file (and its format), environment, command line. */
  sources: string[];
}

/** Result of reading the command line: a config, or a request for help. */
export type CommandLine = { help: true } | LoadedConfig;

/** Builds the configuration from defaults, the config file, the environment and the flags (in that order). */
export function loadConfig(argv: string[], env: Readonly<Record<string, string | undefined>> = process.env): CommandLine {
  const flags = parseFlags(argv);
  if (flags.help) return { help: true };
  const layers: Layer[] = [];
  const warnings: string[] = [];
  const sources: string[] = [];
  if (flags.configFile !== undefined && flags.mosquittoFile !== undefined) throw new ConfigError('give --config or --mosquitto-conf, not both');
  const file = flags.mosquittoFile ?? flags.configFile;
  if (file !== undefined) {
    const read = readConfigFile(file, flags.mosquittoFile === undefined ? 'auto' : 'mosquitto');
    layers.push(read.layer);
    warnings.push(...read.warnings);
    sources.push(`${file} (${read.format === 'mosquitto' ? 'Mosquitto configuration, translated' : 'Starling configuration'})`);
  }
  const environment = envLayer(env);
  warnings.push(...environment.warnings);
  if (environment.layer !== undefined) {
    layers.push(environment.layer);
    sources.push(`environment (${Object.keys(environment.layer.value).length} top-level keys from STARLING_* variables)`);
  }
  if (Object.keys(flags.layer.value).length > 0) sources.push('command line');
  layers.push(flags.layer);
  return { help: false, config: buildConfig(layers), warnings, sources };
}

/** Validates a config object (as read from a file) and merges it over `base`. */
export function applyConfigObject(base: Readonly<StarlingConfig>, data: unknown, source: string): StarlingConfig {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`${source}: the configuration must be an object; got ${Array.isArray(data) ? 'an array' : String(data)}`);
  const copy = structuredClone(base) as StarlingConfig;
  delete copy.http.portIsDefault;
  const defaults: Layer = { ...objectLayer('defaults', copy), defaults: true };
  return buildConfig([defaults, objectLayer(source, data as Record<string, unknown>)]);
}

/** Checks each layer, merges them, fills the defaults and runs the cross-key checks; throws every problem at once. */
export function buildConfig(layers: readonly Layer[]): StarlingConfig {
  const errors: string[] = [];
  const owner = new Map<string, Layer>();
  const refused: Path[] = [];
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    const { value, errors: found, paths } = checkLayer(layer);
    errors.push(...found);
    refused.push(...paths);
    // `host` is a shorthand for `hosts` with one entry.
    if (typeof value['host'] === 'string') {
      value['hosts'] = [value['host']];
      delete value['host'];
    }
    for (const key of Object.keys(value)) owner.set(key, layer);
    merged = deepMerge(merged, value);
  }
  const userSet = (key: string): boolean => layers.some((l) => l.defaults !== true && l.value[key] !== undefined);
  // With `listeners` given, port / hosts add a plain listener only when set; their defaults add none.
  const listeners = merged['listeners'];
  if (Array.isArray(listeners) && listeners.length > 0 && !layers.some((l) => l.defaults === true && l.value['listeners'] === listeners) && (userSet('port') || userSet('hosts') || userSet('host'))) {
    merged['listeners'] = [...(listeners as unknown[]), { name: 'tcp', protocol: 'mqtt', port: merged['port'] ?? SCHEMA.fields.port.default, ...(merged['hosts'] === undefined ? {} : { hosts: merged['hosts'] }) }];
  }
  const issues: Issue[] = [];
  const config = check(SCHEMA, merged, [], issues, true) as StarlingConfig;
  const ownerOf = (key: string | number | undefined): Layer => owner.get(String(key)) ?? layers[layers.length - 1] ?? objectLayer('configuration', {});
  for (const issue of issues) {
    // A value a layer already refused is left out of the merge: its "is required" or "got undefined" would say it twice.
    if (refused.some((at) => within(issue.path, at))) continue;
    const message = issueMessage(ownerOf(issue.path[0]), issue);
    if (!errors.includes(message)) errors.push(message);
  }
  if (errors.length > 0) throw new ConfigError(errors);
  const http = layers.filter((l) => l.defaults !== true).map((l) => l.value['http'] as Record<string, unknown> | undefined);
  config.http.portIsDefault = !http.some((h) => h?.['port'] !== undefined);
  errors.push(...crossCheck(config, (key) => ownerOf(key).source));
  if (errors.length > 0) throw new ConfigError(errors);
  return config;
}

/** Checks a `bridges` array given in code (startServer) as the loader does for a file. */
export function checkBridgesConfig(bridges: unknown): StarlingConfig['bridges'] {
  const issues: Issue[] = [];
  const checked = check(SCHEMA.fields.bridges, bridges, ['bridges'], issues, true) as StarlingConfig['bridges'];
  const errors = issues.map((i) => `bridges: ${pathText(i.path)} ${i.problem}`);
  if (errors.length === 0) errors.push(...checkBridges(checked, (i) => `bridges[${i}]`));
  if (errors.length > 0) throw new ConfigError(errors);
  return checked;
}

/** Checks a `webhooks` array given in code (startServer) as the loader does for a file. */
export function checkWebhooksConfig(webhooks: unknown): StarlingConfig['webhooks'] {
  const issues: Issue[] = [];
  const checked = check(SCHEMA.fields.webhooks, webhooks, ['webhooks'], issues, true) as StarlingConfig['webhooks'];
  const errors = issues.map((i) => `${pathText(i.path)} ${i.problem}`);
  if (errors.length === 0) errors.push(...checkWebhooks(checked, (i) => `webhooks[${i}]`));
  if (errors.length > 0) throw new ConfigError(errors);
  return checked;
}

/** Checks an `auth.http` object given in code (startServer) as the loader does for a file. */
export function checkHttpAuthConfig(http: unknown): HttpAuthConfig {
  const issues: Issue[] = [];
  const checked = check(SCHEMA.fields.auth.fields.http, http, ['auth', 'http'], issues, true) as HttpAuthConfig;
  const errors = issues.map((i) => `${pathText(i.path)} ${i.problem}`);
  if (errors.length === 0) errors.push(...checkHttpAuth(checked, 'auth.http'));
  if (errors.length > 0) throw new ConfigError(errors);
  return checked;
}
