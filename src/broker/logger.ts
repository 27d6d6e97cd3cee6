/** The logging the broker needs: a pino-compatible subset (structured object first, then message). */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** pino's level check, used to skip building debug records on hot paths. */
  isLevelEnabled?(level: string): boolean;
}

/** A logger that drops everything (default for embedding and tests). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
