/**
 * Configuration layers (a file, the environment, the command line): each is checked against the
 * schema on its own, so every message names where the value came from; then they are merged.
 */
import { check, pathText, type Issue, type Path } from './setting.js';
import { SCHEMA } from './schema.js';

/** One source of configuration values. */
export interface Layer {
  /** The file name, "environment", "command line" or "defaults". */
  readonly source: string;
  /** The values, in the shape of the config file. */
  readonly value: Record<string, unknown>;
  /** Built-in defaults: never counted as something the user set. */
  readonly defaults?: true;
  /** How the key at `path` is named in a message: "--port", "STARLING_PORT (port)", "starling.json:3: port". */
  where(path: Path): string;
  /** The text before "unknown key …": "starling.json:3: ". */
  prefix(path: Path): string;
  /** A message of its own for a missing required key (e.g. "--node-id needs --redis"), if any. */
  required?(path: Path): string | undefined;
}

/** A layer over a plain object (a config file already parsed, or an object given in code). */
export function objectLayer(source: string, value: Record<string, unknown>, line?: (path: Path) => number | undefined): Layer {
  const prefix = (path: Path): string => {
    const at = line?.(path);
    return at === undefined ? `${source}: ` : `${source}:${at}: `;
  };
  return {
    source,
    value,
    prefix,
    where: (path) => `${prefix(path)}${path.length === 0 ? 'the configuration' : pathText(path)}`,
  };
}

/** The message for one issue found in a layer. */
export function issueMessage(layer: Layer, issue: Issue): string {
  if (issue.problem.startsWith('is an unknown key')) {
    return `${layer.prefix(issue.path)}unknown key "${pathText(issue.path)}"${issue.problem.slice('is an unknown key'.length)}`;
  }
  if (issue.problem.startsWith('is required')) {
    const own = layer.required?.(issue.path);
    if (own !== undefined) return own;
  }
  return `${layer.where(issue.path)} ${issue.problem}`;
}

/** Checks a layer on its own (no defaults, no required keys); returns its valid values, the messages and where the problems are. */
export function checkLayer(layer: Layer): { value: Record<string, unknown>; errors: string[]; paths: Path[] } {
  const issues: Issue[] = [];
  const checked = check(SCHEMA, layer.value, [], issues, false);
  const errors = issues.map((issue) => issueMessage(layer, issue));
  return { value: (checked ?? {}) as Record<string, unknown>, errors, paths: issues.map((issue) => issue.path) };
}

/** Whether `path` is `at` or lies under it. */
export function within(path: Path, at: Path): boolean {
  return at.length <= path.length && at.every((part, i) => path[i] === part);
}

/** `over` merged onto `base`: objects key by key, anything else (arrays included) replaced. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const before = out[key];
    out[key] = isPlainObject(before) && isPlainObject(value) ? deepMerge(before, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
