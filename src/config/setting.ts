/**
 * Building blocks of the configuration schema: typed settings that validate, default and describe
 * themselves. Pure (no I/O, no Node modules): the broker core imports the defaults derived from them.
 */

/** Where a value sits in the configuration: keys and array indexes. */
export type Path = readonly (string | number)[];

/** What every setting has: its documentation, and optionally a default or a "required" mark. */
interface Common {
  /** One line for --help and docs/configuration.md. */
  readonly doc: string;
  /** Shown instead of the literal default where that reads badly ("127.0.0.1 and ::1"). */
  readonly defaultText?: string;
  readonly required?: true;
  /** Not settable from an environment variable (e.g. a per-listener key). */
  readonly noEnv?: true;
}

/** An integer in [min, max]. */
export interface IntSetting extends Common {
  readonly kind: 'int';
  readonly min: number;
  readonly max: number;
  readonly default?: number;
  /** Also accepts the word "auto" (the program picks the number, e.g. the number of cores). */
  readonly auto?: true;
}

/** true or false. */
export interface BoolSetting extends Common {
  readonly kind: 'bool';
  readonly default?: boolean;
}

/** A string; non-empty unless `allowEmpty`; `check` names what is expected when a value is wrong. */
export interface StrSetting extends Common {
  readonly kind: 'str';
  readonly default?: string;
  readonly allowEmpty?: boolean;
  /** Returns undefined when the value is fine, otherwise what was expected ("a redis:// URL"). */
  readonly check?: (value: string) => string | undefined;
}

/** One of a few strings or numbers. */
export interface OneOfSetting<V extends string | number = string | number> extends Common {
  readonly kind: 'oneOf';
  readonly values: readonly V[];
  readonly default?: V;
}

/** An array of one kind of setting. */
export interface ListSetting<I extends Setting = Setting> extends Common {
  readonly kind: 'list';
  readonly of: I;
  readonly default?: readonly never[];
}

/** An object with known keys (unknown keys are refused). */
export interface ObjSetting<F extends Fields = Fields> extends Common {
  readonly kind: 'obj';
  readonly fields: F;
  /** Present (with its fields' defaults) even when not given. */
  readonly always?: true;
}

/** An object of free keys (names) to one kind of setting. */
export interface RecordSetting<I extends Setting = Setting> extends Common {
  readonly kind: 'record';
  readonly of: I;
  readonly default?: Readonly<Record<string, never>>;
}

/** Any setting. */
export type Setting = IntSetting | BoolSetting | StrSetting | OneOfSetting | ListSetting | ObjSetting | RecordSetting;
/** The settings of an object. */
export type Fields = Readonly<Record<string, Setting>>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Present<S> = S extends { default: unknown } ? true : S extends { required: true } ? true : S extends { always: true } ? true : false;

/** The TypeScript type of a setting's validated value. */
export type ValueOf<S> = S extends { kind: 'int'; auto: true }
  ? number | 'auto'
  : S extends { kind: 'int' }
    ? number
    : S extends { kind: 'bool' }
      ? boolean
      : S extends { kind: 'str' }
        ? string
        : S extends OneOfSetting<infer V>
          ? V
          : S extends ListSetting<infer I>
            ? ValueOf<I>[]
            : S extends RecordSetting<infer I>
              ? Record<string, ValueOf<I>>
              : S extends ObjSetting<infer F>
                ? ObjValue<F>
                : never;

/** An object's value: keys with a default (or required) are always there, the others optional. */
export type ObjValue<F extends Fields> = Simplify<
  { -readonly [K in keyof F as Present<F[K]> extends true ? K : never]: ValueOf<F[K]> } & {
    -readonly [K in keyof F as Present<F[K]> extends true ? never : K]?: ValueOf<F[K]>;
  }
>;

type Options<T> = { doc: string; default?: T; defaultText?: string; required?: true; noEnv?: true };

/** An integer setting (with `auto: true`, the word "auto" too). */
export function int<const O extends Options<number> & { auto?: true }>(min: number, max: number, options: O): O & { kind: 'int'; min: number; max: number } {
  return { kind: 'int', min, max, ...options };
}

/** A boolean setting. */
export function bool<const O extends Options<boolean>>(options: O): O & { kind: 'bool' } {
  return { kind: 'bool', ...options };
}

/** A string setting. */
export function str<const O extends Options<string> & { allowEmpty?: boolean; check?: (value: string) => string | undefined }>(options: O): O & { kind: 'str' } {
  return { kind: 'str', ...options };
}

/** A setting that takes one of `values`. */
export function oneOf<const V extends string | number, const O extends Options<NoInfer<V>>>(values: readonly V[], options: O): O & { kind: 'oneOf'; values: readonly V[] } {
  return { kind: 'oneOf', values, ...options };
}

/** An array setting (default: empty unless `required`). */
export function list<I extends Setting, const O extends Omit<Options<never>, 'default'> & { default?: readonly never[] }>(of: I, options: O): O & { kind: 'list'; of: I } {
  return { kind: 'list', of, ...options };
}

/** An object setting. */
export function obj<const F extends Fields, const O extends Omit<Options<never>, 'default'> & { always?: true }>(fields: F, options: O): O & { kind: 'obj'; fields: F } {
  return { kind: 'obj', fields, ...options };
}

/** A setting of free names to values. */
export function record<I extends Setting, const O extends Omit<Options<never>, 'default'> & { default?: Readonly<Record<string, never>> }>(of: I, options: O): O & { kind: 'record'; of: I } {
  return { kind: 'record', of, ...options };
}

/** A problem found in a value: where, and what is wrong (a sentence without the location). */
export interface Issue {
  readonly path: Path;
  /** "must be an integer from 0 to 65535; got \"1883\" (a string)", "is an unknown key (known: …)", … */
  readonly problem: string;
}

/** `listeners[1].tls.certFile` for ['listeners', 1, 'tls', 'certFile']. */
export function pathText(path: Path): string {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? part : `.${part}`;
  return text;
}

/** How a wrong value is shown in a message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `${JSON.stringify(value)} (a string)`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

/** What a setting accepts, in words ("an integer from 1 to 65535"). */
export function expected(setting: Setting): string {
  switch (setting.kind) {
    case 'int':
      return `an integer from ${setting.min} to ${setting.max}${setting.auto === true ? ', or auto' : ''}`;
    case 'bool':
      return 'true or false';
    case 'str':
      return setting.allowEmpty === true ? 'a string' : 'a non-empty string';
    case 'oneOf':
      return `one of ${setting.values.join(', ')}`;
    case 'list':
      return `an array of ${plural(expected(setting.of))}`;
    case 'obj':
    case 'record':
      return 'an object';
  }
}

function plural(text: string): string {
  if (text.startsWith('one of ')) return `values among ${text.slice('one of '.length)}`;
  return text.replace(/^(an?|one) /, '').replace(/^integer/, 'integers').replace(/^non-empty string$/, 'non-empty strings').replace(/^string$/, 'strings').replace(/^object$/, 'objects');
}

/**
 * Checks `value` against `setting`. `full`: fills defaults and reports missing required keys;
 * otherwise (a partial layer such as one file or the flags) only checks what is there. Returns the
 * checked value (wrong parts left out) and appends every problem to `issues`.
 */
export function check(setting: Setting, value: unknown, path: Path, issues: Issue[], full: boolean): unknown {
  const wrong = (): undefined => {
    issues.push({ path, problem: `must be ${expected(setting)}; got ${describeValue(value)}` });
    return undefined;
  };
  switch (setting.kind) {
    case 'int':
      if (setting.auto === true && value === 'auto') return value;
      return typeof value === 'number' && Number.isInteger(value) && value >= setting.min && value <= setting.max ? value : wrong();
    case 'bool':
      return typeof value === 'boolean' ? value : wrong();
    case 'oneOf':
      return (setting.values as readonly unknown[]).includes(value) ? value : wrong();
    case 'str': {
      if (typeof value !== 'string' || (value.length === 0 && setting.allowEmpty !== true)) return wrong();
      const want = setting.check?.(value);
      if (want === undefined) return value;
      issues.push({ path, problem: `must be ${want}; got ${describeValue(value)}` });
      return undefined;
    }
    case 'list':
      if (!Array.isArray(value)) return wrong();
      return value.map((item: unknown, i) => check(setting.of, item, [...path, i], issues, full));
    case 'record': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return wrong();
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) out[key] = check(setting.of, item, [...path, key], issues, full);
      return out;
    }
    case 'obj':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return wrong();
      return checkFields(setting, value as Record<string, unknown>, path, issues, full);
  }
}

function checkFields(setting: ObjSetting, value: Record<string, unknown>, path: Path, issues: Issue[], full: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const field = setting.fields[key];
    if (field === undefined) {
      issues.push({ path: [...path, key], problem: `is an unknown key (known: ${Object.keys(setting.fields).join(', ')})` });
      continue;
    }
    if (item === undefined) continue;
    const checked = check(field, item, [...path, key], issues, full);
    if (checked !== undefined) out[key] = checked;
  }
  if (!full) return out;
  for (const [key, field] of Object.entries(setting.fields)) {
    if (key in out || value[key] !== undefined) continue;
    const fallback = defaultOf(field);
    if (fallback !== undefined) out[key] = fallback;
    else if (field.required === true) issues.push({ path: [...path, key], problem: `is required (${field.doc})` });
  }
  return out;
}

/** A setting's default value (a fresh copy), or undefined when it has none. */
export function defaultOf(setting: Setting): unknown {
  if (setting.kind === 'obj') return setting.always === true ? checkFields(setting, {}, [], [], true) : undefined;
  if (setting.kind === 'list' || setting.kind === 'record') return setting.default === undefined ? undefined : structuredClone(setting.default);
  return setting.default;
}

/** The setting at `path` (keys and indexes), or undefined when there is none. */
export function settingAt(root: Setting, path: Path): Setting | undefined {
  let setting: Setting | undefined = root;
  for (const part of path) {
    if (setting === undefined) return undefined;
    if (setting.kind === 'obj' && typeof part === 'string') setting = setting.fields[part];
    else if (setting.kind === 'list' && typeof part === 'number') setting = setting.of;
    else if (setting.kind === 'record' && typeof part === 'string') setting = setting.of;
    else return undefined;
  }
  return setting;
}

/**
 * Turns text from the command line or the environment into the value a setting takes: digits
 * into numbers, true/false/yes/no/on/off/1/0 into booleans, comma-separated items (or JSON) into
 * arrays, JSON into objects. Text that does not fit is left as it is, for `check` to refuse.
 */
export function fromText(setting: Setting, text: string): unknown {
  switch (setting.kind) {
    case 'int':
      return /^[+-]?\d+$/.test(text.trim()) ? Number(text) : text;
    case 'oneOf':
      return typeof setting.values[0] === 'number' && /^\d+$/.test(text.trim()) ? Number(text) : text;
    case 'bool': {
      const word = text.trim().toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(word)) return true;
      if (['false', 'no', 'off', '0'].includes(word)) return false;
      return text;
    }
    case 'str':
      return text;
    case 'list':
      if (text.trim().startsWith('[')) return parseJson(text);
      return text.split(',').map((item) => fromText(setting.of, item.trim()));
    case 'obj':
    case 'record':
      return parseJson(text);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Every leaf setting with its path (lists and records count as leaves), for help, docs and env. */
export function leaves(setting: Setting, path: Path = []): Array<{ path: Path; setting: Setting }> {
  if (setting.kind !== 'obj') return [{ path, setting }];
  return Object.entries(setting.fields).flatMap(([key, field]) => leaves(field, [...path, key]));
}

/** The default as docs and help show it. */
export function defaultText(setting: Setting): string | undefined {
  if (setting.defaultText !== undefined) return setting.defaultText;
  const value = defaultOf(setting);
  if (value === undefined || setting.kind === 'obj') return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
