/** ConfigError: a configuration problem, with every message meant for the person running Starling. */

/** One or more configuration problems; each names the key (or flag, variable, line), the value and what was expected. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  /** Every problem found, one sentence each. */
  readonly errors: readonly string[];

  constructor(errors: string | readonly string[]) {
    const list = typeof errors === 'string' ? [errors] : errors;
    super(list.join('\n'));
    this.errors = list;
  }
}
