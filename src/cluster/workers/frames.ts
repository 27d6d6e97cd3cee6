/**
 * What the workers and the hub say to each other: one binary frame per message (V8's serializer, so
 * Buffers travel as bytes, never as JSON). A worker's turn is one `commit` frame; the envelopes inside
 * are the cluster's own codec (`../envelope.ts`), batched per target worker.
 */
import { deserialize, serialize } from 'node:v8';
import type { AccessChange, StoreOp, StoredRetained, StoredState } from '../../persistence/types.js';
import type { AccessRequest } from './hub-access.js';
import type { Will } from '../../protocol/types.js';

/** A change of one worker's interest: added (+) or removed (-). */
export type RouteOp = ['+' | '-', string];

/** A worker's share of the group's load, for the limits and the per-worker view. */
export interface WorkerLoad {
  connections: number;
  sessions: number;
}

/** One turn of a worker: its store operations and its bus writes, applied by the hub in one store transaction. */
export interface CommitFrame {
  t: 'commit';
  id: number;
  ops: StoreOp[];
  /** QoS 1/2 envelope batches per target worker (through its durable inbox). */
  out: [string, Buffer[]][];
  /** QoS 0 envelope batches per target worker (in memory only). */
  out0: [string, Buffer[]][];
  /** Inbox entries whose deliveries this commit holds. */
  acks: number[];
  routes: RouteOp[];
  /** Clients that connected here, with their will (null: none). */
  online: [string, Will | null][];
  /** Clients connected here that went away; true: their session stays (persistent), false: the client id is let go. */
  offline: [string, boolean][];
}

/** A retained change as workers pass it on: the message set, or the topic cleared. */
export type RetainedChange = StoredRetained | { topic: string; cleared: true };

/** What a worker sends the hub. */
export type WorkerFrame =
  | CommitFrame
  /** The sessions this worker holds and every retained message (its store's `load`). */
  | { t: 'load'; rid: number }
  /** The worker's bus starts with this interest: it gets the routes, the wills of its previous process's clients, then its inbox. */
  | { t: 'start'; rid: number; routes: string[] }
  | { t: 'claim'; rid: number; clientId: string; load: boolean }
  /** The answer to a `release`: the session's state is committed. */
  | { t: 'released'; rid: number }
  /** Asks every worker for a report (`what`), for a view of the whole group. */
  | { t: 'gather'; rid: number; what: string; arg: unknown }
  /** The answer to a `report`. */
  | { t: 'reported'; rid: number; value: unknown }
  /** A request to the group's access store (users, roles, bans, admins). */
  | { t: 'access'; rid: number; request: AccessRequest }
  /** The worker's listeners are open: it serves clients. */
  | { t: 'ready' }
  /** The worker leaves (a graceful stop): its routes stay, its inbox keeps filling. */
  | { t: 'leave' };

/** What the hub sends a worker. */
export type HubFrame =
  | { t: 'committed'; id: number; error?: string }
  | { t: 'loaded'; rid: number; state: StoredState }
  | { t: 'started'; rid: number; routes: [string, string[]][]; wills: [string, Will][]; retained: StoredRetained[] }
  | { t: 'claimed'; rid: number; state?: StoredState; error?: string }
  /** Envelopes for this worker: QoS 0 (no seq) or inbox entries (their seqs, acknowledged in a commit). */
  | { t: 'deliver'; data: Buffer; seq?: number }
  /** Another worker's interest changed; `reset`: its whole interest is the added keys. */
  | { t: 'routes'; node: string; changes: RouteOp[]; reset?: boolean }
  | { t: 'retained'; changes: RetainedChange[] }
  /** Let go of `clientId` (another worker claims it). */
  | { t: 'release'; rid: number; clientId: string; to: string }
  | { t: 'gathered'; rid: number; values: [string, unknown][] }
  | { t: 'report'; rid: number; what: string; arg: unknown }
  /** The load of the other workers (for limits that hold for the whole group). */
  | { t: 'load'; others: WorkerLoad }
  /** The answer to an `access` request. */
  | { t: 'accessed'; rid: number; value?: unknown; error?: string }
  /** Access records changed (a write from any worker), or 'all': reload them. */
  | { t: 'accessChanged'; changes: AccessChange[] | 'all' };

const WORKER_FRAMES = new Set(['commit', 'load', 'start', 'claim', 'released', 'gather', 'reported', 'access', 'ready', 'leave']);
const HUB_FRAMES = new Set(['committed', 'loaded', 'started', 'claimed', 'deliver', 'routes', 'retained', 'release', 'gathered', 'report', 'load', 'accessed', 'accessChanged']);

/** The bytes of a frame. */
export function encodeFrame(frame: WorkerFrame | HubFrame): Buffer {
  return serialize(frame);
}

/** A frame from a worker; throws on anything else. */
export function decodeWorkerFrame(data: Uint8Array): WorkerFrame {
  return decode(data, WORKER_FRAMES) as WorkerFrame;
}

/** A frame from the hub; throws on anything else. */
export function decodeHubFrame(data: Uint8Array): HubFrame {
  return decode(data, HUB_FRAMES) as HubFrame;
}

function decode(data: Uint8Array, kinds: ReadonlySet<string>): unknown {
  const frame: unknown = deserialize(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const kind = typeof frame === 'object' && frame !== null ? (frame as { t?: unknown }).t : undefined;
  if (typeof kind !== 'string' || !kinds.has(kind)) throw new Error(`workers: unknown frame ${JSON.stringify(kind)}`);
  return frame;
}
