/**
 * The process logger (pino): JSON lines for machines, or one readable line per record for people
 * (`--log-format pretty`; `auto` picks pretty when standard output is a terminal).
 */
import { pino, stdTimeFunctions, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** How log records are written. */
export type LogFormat = 'auto' | 'pretty' | 'json';

const COLORS: Readonly<Record<string, string>> = { fatal: '\x1b[41m', error: '\x1b[31m', warn: '\x1b[33m', info: '\x1b[32m', debug: '\x1b[36m', trace: '\x1b[90m' };
const RESET = '\x1b[0m';
/** Fields every record has, shown in the line's head rather than as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);

/** A pino logger at `level` writing `format` to `out` (standard output by default). */
export function createLogger(level: string, format: LogFormat, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): PinoLogger {
  const pretty = format === 'pretty' || (format === 'auto' && out.isTTY === true);
  const options = {
    level,
    base: { name: 'starling' },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (!pretty) return pino(options, out === process.stdout ? undefined : (out as DestinationStream));
  const color = out.isTTY === true && process.env['NO_COLOR'] === undefined;
  const destination: DestinationStream = { write: (line: string) => void out.write(prettyLine(line, color)) };
  return pino(options, destination);
}

/**
 * One JSON record as a line: time, level, message, then the other fields as key=value
 * ("10:15:02.123 INFO  MQTT listening on mqtt://127.0.0.1:1883  listener=tcp port=1883").
 */
export function prettyLine(json: string, color = false): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof record['time'] === 'string' ? record['time'].slice(11, 23) : '';
  const level = typeof record['level'] === 'string' ? record['level'] : '';
  const label = level.toUpperCase().padEnd(5);
  const fields = Object.entries(record)
    .filter(([key, value]) => !HEAD.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const head = color ? `${COLORS[level] ?? ''}${label}${RESET}` : label;
  return `${time} ${head} ${typeof record['msg'] === 'string' ? record['msg'] : ''}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'object' && value !== null && 'message' in value && 'stack' in value) return JSON.stringify((value as { message: unknown }).message);
  return JSON.stringify(value);
}
