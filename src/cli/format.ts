/** How `starling sub` prints a message: raw payload, `-v`, `-F format`, or `--json`. */
import { isUtf8 } from 'node:buffer';
import type { Message, Properties } from '../client/index.js';

/** Properties as JSON: Buffers become base64 strings, user properties [name, value] pairs. */
export function propertiesToJson(properties: Properties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(properties)) {
    out[key] = Buffer.isBuffer(value) ? value.toString('base64') : (value as unknown);
  }
  return out;
}

/** One JSON object (one line) per message: payload as text when valid UTF-8, else base64 with `encoding`. */
export function messageToJson(m: Message): string {
  const text = isUtf8(m.payload);
  const o: Record<string, unknown> = { topic: m.topic, payload: m.payload.toString(text ? 'utf8' : 'base64') };
  if (!text) o['encoding'] = 'base64';
  o['qos'] = m.qos;
  o['retain'] = m.retain;
  if (m.properties !== undefined) o['properties'] = propertiesToJson(m.properties);
  return JSON.stringify(o);
}

/**
 * Renders mosquitto_sub's `-F` format: %t topic, %p payload, %q QoS, %r retain (0/1), %l payload
 * length, %I ISO 8601 time, %U Unix time with fraction, %x / %X payload in hex, %j the JSON line,
 * %C content type, %R response topic, %P user properties (k:v,…), %c client id, %% a percent sign;
 * escapes \n \t \\ \e.
 */
export function formatMessage(format: string, m: Message, clientId: string, now = new Date()): Buffer {
  const parts: Buffer[] = [];
  let text = '';
  const flush = (): void => {
    if (text.length > 0) parts.push(Buffer.from(text));
    text = '';
  };
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    const next = format[i + 1];
    if (c === '%' && next !== undefined) {
      i++;
      switch (next) {
        case 't': text += m.topic; break;
        case 'p': flush(); parts.push(m.payload); break;
        case 'q': text += String(m.qos); break;
        case 'r': text += m.retain ? '1' : '0'; break;
        case 'l': text += String(m.payload.length); break;
        case 'I': text += now.toISOString(); break;
        case 'U': text += (now.getTime() / 1000).toFixed(6); break;
        case 'x': text += m.payload.toString('hex'); break;
        case 'X': text += m.payload.toString('hex').toUpperCase(); break;
        case 'j': text += messageToJson(m); break;
        case 'C': text += m.properties?.contentType ?? ''; break;
        case 'R': text += m.properties?.responseTopic ?? ''; break;
        case 'P': text += (m.properties?.userProperties ?? []).map(([k, v]) => `${k}:${v}`).join(','); break;
        case 'c': text += clientId; break;
        case '%': text += '%'; break;
        default: text += `%${next}`;
      }
    } else if (c === '\\' && next !== undefined) {
      i++;
      switch (next) {
        case 'n': text += '\n'; break;
        case 't': text += '\t'; break;
        case 'e': text += '\x1b'; break;
        case '\\': text += '\\'; break;
        default: text += `\\${next}`;
      }
    } else {
      text += c;
    }
  }
  flush();
  return Buffer.concat(parts);
}
