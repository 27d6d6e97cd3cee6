/** Bytes as "12.3 MiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Seconds as "3d 4h", "5h 6m", "7m 8s". */
export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** The largest session expiry interval (0xFFFFFFFF): such a session does not expire (MQTT 5.0, 3.1.2.11.2). */
export const NEVER_EXPIRES = 0xffffffff;

/** A session expiry interval in words: "never", "at disconnect", or a duration with its seconds. */
export function expiry(seconds: number): string {
  if (seconds >= NEVER_EXPIRES) return 'never';
  if (seconds === 0) return 'at disconnect';
  return seconds < 60 ? `${seconds} s` : `${duration(seconds)} (${count(seconds)} s)`;
}

/** A rate with a sensible number of digits. */
export function rate(perSecond: number): string {
  if (perSecond >= 100) return Math.round(perSecond).toLocaleString();
  if (perSecond >= 10) return perSecond.toFixed(1);
  return perSecond.toFixed(2);
}

/** A count with thousands separators. */
export function count(n: number): string {
  return n.toLocaleString();
}

/** A time as hh:mm:ss. */
export function clock(date: Date): string {
  return date.toLocaleTimeString([], { hour12: false });
}

/** How a payload is shown. */
export type PayloadView = 'text' | 'json' | 'hex';

/** The best first view of a payload: JSON if it parses, text if it is UTF-8, else hex. */
export function guessView(payload: Uint8Array): PayloadView {
  const text = utf8(payload);
  if (text === undefined) return 'hex';
  try {
    JSON.parse(text);
    return /^\s*[[{]/.test(text) ? 'json' : 'text';
  } catch {
    return 'text';
  }
}

/** The payload as the chosen view. */
export function showPayload(payload: Uint8Array, view: PayloadView): string {
  if (view === 'hex') return hexDump(payload);
  const text = utf8(payload) ?? new TextDecoder().decode(payload);
  if (view === 'json') {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return `(not JSON)\n${text}`;
    }
  }
  return text;
}

function utf8(payload: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    return undefined;
  }
}

/** 16 bytes a line: offset, hex, printable ASCII. */
export function hexDump(payload: Uint8Array, max = 4096): string {
  const lines: string[] = [];
  const end = Math.min(payload.length, max);
  for (let offset = 0; offset < end; offset += 16) {
    const row = payload.subarray(offset, Math.min(offset + 16, end));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${offset.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (payload.length > max) lines.push(`… ${payload.length - max} more bytes`);
  return lines.join('\n');
}

/** Base64 to bytes. */
export function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
