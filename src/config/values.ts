/** Validation of configuration values (from the config file or flags), shared by the config modules. */

/** A configuration problem, with a message meant for the person running Starling. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
}

/** An object (not an array, not null). */
export function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where} must be an object`);
  return value as Record<string, unknown>;
}

/** A non-empty string. */
export function asString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new ConfigError(`${where} must be a non-empty string`);
  return value;
}

/** An array of non-empty strings. */
export function asStrings(value: unknown, where: string): string[] {
  if (!Array.isArray(value)) throw new ConfigError(`${where} must be an array of strings`);
  return value.map((item, i) => asString(item, `${where}[${i}]`));
}

/** true or false. */
export function asBoolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(`${where} must be true or false`);
  return value;
}

/** An integer in [min, max]. */
export function asInteger(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${where} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A TCP port (a number, or a string of digits from a flag); 0 picks a free port. */
export function asPort(value: unknown, where: string): number {
  return asInteger(typeof value === 'string' ? Number(value) : value, where, 0, 65_535);
}

/** One of `choices`. */
export function asChoice<T extends string>(value: unknown, where: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw new ConfigError(`${where} must be one of ${choices.join(', ')}`);
  return value as T;
}
