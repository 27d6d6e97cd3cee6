/** `starling data inspect`: prints what the embedded store holds. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LmdbPersistence, StoreFormatError } from '../persistence/lmdb.js';
import type { StoredState } from '../persistence/types.js';

const USAGE = `Usage: starling data inspect [--data-dir DIR] [--json]

Prints what the embedded store in DIR (default ./data) holds: its format version, persistent
sessions with their subscriptions and waiting messages, incoming QoS 2 ids and retained messages.
Stop the broker first, or run it on a copy: the store is opened read-write.
`;

/** Runs `starling data …`; returns the exit code. */
export async function runData(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'inspect') {
    process.stderr.write(command === undefined || command === '--help' ? USAGE : `starling data: unknown command "${command}"\n\n${USAGE}`);
    return command === '--help' ? 0 : 1;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`starling data inspect: ${(error as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const dataDir = values['data-dir'] ?? './data';
  if (!existsSync(join(dataDir, 'starling.mdb'))) {
    process.stderr.write(`starling data inspect: no Starling store in ${dataDir}\n`);
    return 1;
  }
  let store: LmdbPersistence;
  try {
    store = new LmdbPersistence({ dataDir, lock: false }); // read beside a running broker
  } catch (error) {
    process.stderr.write(`starling data inspect: ${error instanceof StoreFormatError ? error.message : String(error)}\n`);
    return 1;
  }
  try {
    const state = await store.load();
    process.stdout.write(values.json === true ? `${JSON.stringify(toJson(store.formatVersion, dataDir, state), null, 2)}\n` : toText(store.formatVersion, dataDir, state));
  } finally {
    await store.close();
  }
  return 0;
}

function payloadText(payload: Buffer): string {
  const text = payload.toString('utf8');
  const shown = Buffer.from(text, 'utf8').equals(payload) ? JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text) : `<${payload.length} bytes>`;
  return shown;
}

function toText(format: number, dataDir: string, state: StoredState): string {
  const lines: string[] = [];
  lines.push(`store: ${dataDir} (format ${format})`);
  lines.push(`sessions: ${state.sessions.length}, waiting messages: ${state.deliveries.length}, message bodies: ${state.messages.length}, retained: ${state.retained.length}`);
  const byClient = new Map<string, typeof state.deliveries>();
  for (const d of state.deliveries) (byClient.get(d.clientId) ?? byClient.set(d.clientId, []).get(d.clientId)!).push(d);
  const messages = new Map(state.messages.map((m) => [m.id, m]));
  for (const session of state.sessions) {
    const expiry = session.expiryInterval === 0xffff_ffff ? 'never expires' : `expires ${session.expiryInterval} s after disconnect`;
    const seen = session.disconnectedAt === undefined ? 'connected (or the broker stopped abruptly)' : `disconnected ${new Date(session.disconnectedAt).toISOString()}`;
    lines.push('', `session ${JSON.stringify(session.clientId)}: ${expiry}; ${seen}`);
    for (const s of session.subscriptions) lines.push(`  subscription ${s.topicFilter} qos ${s.qos}${s.subscriptionId === undefined ? '' : ` id ${s.subscriptionId}`}`);
    if (session.pendingWill !== undefined) lines.push(`  will on ${session.pendingWill.will.topic} due ${new Date(session.pendingWill.at).toISOString()}`);
    for (const d of byClient.get(session.clientId) ?? []) {
      const m = messages.get(d.messageId);
      const what = m === undefined ? `<missing message ${d.messageId}>` : `${m.topic} ${payloadText(m.payload)}`;
      lines.push(`  #${d.seq} ${d.state}${d.packetId === undefined ? '' : ` id ${d.packetId}`} qos ${d.qos}: ${what}`);
    }
    const q2 = state.incomingQos2.filter((q) => q.clientId === session.clientId).map((q) => q.packetId);
    if (q2.length > 0) lines.push(`  incoming QoS 2 awaiting PUBREL: ${q2.join(', ')}`);
  }
  if (state.retained.length > 0) {
    lines.push('', 'retained:');
    for (const r of state.retained) lines.push(`  ${r.topic} qos ${r.qos}: ${payloadText(r.payload)}`);
  }
  return `${lines.join('\n')}\n`;
}

function toJson(format: number, dataDir: string, state: StoredState): unknown {
  const encode = (payload: Buffer): string => payload.toString('base64');
  return {
    dataDir,
    format,
    sessions: state.sessions.map((s) => ({ ...s, pendingWill: s.pendingWill === undefined ? undefined : { ...s.pendingWill, will: { ...s.pendingWill.will, payload: encode(s.pendingWill.will.payload) } } })),
    deliveries: state.deliveries,
    messages: state.messages.map((m) => ({ ...m, payload: encode(m.payload) })),
    incomingQos2: state.incomingQos2,
    retained: state.retained.map((r) => ({ ...r, payload: encode(r.payload) })),
  };
}
