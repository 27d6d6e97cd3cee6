/**
 * Environment-variable overrides: STARLING_ and the key path in UPPER_SNAKE_CASE, levels joined by
 * a double underscore (STARLING_LIMITS__MAX_INFLIGHT=50 sets limits.maxInflight). Lists take
 * comma-separated items or JSON; objects and lists of objects take JSON.
 */
import type { Layer } from './layer.js';
import { setPath } from './flags.js';
import { SCHEMA } from './schema.js';
import { fromText, pathText, type Path, type Setting } from './setting.js';

const PREFIX = 'STARLING_';
/** Variables that are not settings but are read by Starling, its tests or benchmarks; they are not warned about. */
const NOT_SETTINGS = /^STARLING_(API_TOKEN|ADMIN_USER|ADMIN_PASSWORD|WORKER_ID|TEST_\w+|FUZZ_\w+|UPDATE_\w+)$/;

/** The variable that sets `path`: ['limits', 'maxInflight'] → STARLING_LIMITS__MAX_INFLIGHT. */
export function envName(path: Path): string {
  return PREFIX + path.map((part) => String(part).replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__');
}

/** The schema path a variable name stands for (segments matched without case and underscores), or undefined. */
function pathOf(name: string): Path | undefined {
  const path: string[] = [];
  let setting: Setting = SCHEMA;
  for (const segment of name.slice(PREFIX.length).split('__')) {
    if (setting.kind !== 'obj') return undefined;
    const wanted = segment.replace(/_/g, '').toLowerCase();
    const key = Object.keys(setting.fields).find((k) => k.toLowerCase() === wanted);
    if (key === undefined) return undefined;
    path.push(key);
    setting = setting.fields[key] as Setting;
    if (setting.noEnv === true) return undefined;
  }
  return path.length === 0 ? undefined : path;
}

/** The environment as a configuration layer, plus a warning for each STARLING_ variable that is no setting. */
export function envLayer(env: Readonly<Record<string, string | undefined>>): { layer: Layer | undefined; warnings: string[] } {
  const value: Record<string, unknown> = {};
  const names = new Map<string, string>();
  const warnings: string[] = [];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(PREFIX) || text === undefined || NOT_SETTINGS.test(name)) continue;
    const path = pathOf(name);
    if (path === undefined) {
      warnings.push(`environment variable ${name} is not a setting and was ignored (the rule: STARLING_ and the key path in UPPER_SNAKE_CASE, levels joined by __, e.g. STARLING_LIMITS__MAX_INFLIGHT)`);
      continue;
    }
    let setting: Setting = SCHEMA;
    for (const key of path) setting = (setting as { fields: Record<string, Setting> }).fields[key as string] as Setting;
    setPath(value, path, fromText(setting, text));
    names.set(pathText(path), name);
  }
  if (names.size === 0) return { layer: undefined, warnings };
  const nameOf = (path: Path): string => {
    for (let n = path.length; n > 0; n--) {
      const name = names.get(pathText(path.slice(0, n)));
      if (name !== undefined) return name;
    }
    return 'environment';
  };
  const layer: Layer = {
    source: 'environment',
    value,
    where: (path) => `${nameOf(path)} (${pathText(path)})`,
    prefix: (path) => `${nameOf(path)}: `,
  };
  return { layer, warnings };
}
