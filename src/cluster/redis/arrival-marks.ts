/**
 * Where this node's stream stood when a session arrived here from another node (a move or an
 * adoption): the entries written before were routed while the session lived elsewhere, and that
 * node delivered its own copy; read here late (after a cut, a pending re-read), they must not
 * reach the session a second time.
 */
import type { Redis } from 'ioredis';

/** How long a mark is kept: far longer than any reader takes to get past its position. */
const MARK_TTL_MS = 60_000;

/** Compares two Redis stream entry ids (`{ms}-{seq}`): negative, zero or positive. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const msA = Number(da < 0 ? a : a.slice(0, da));
  const msB = Number(db < 0 ? b : b.slice(0, db));
  if (msA !== msB) return msA - msB;
  return Number(da < 0 ? 0 : a.slice(da + 1)) - Number(db < 0 ? 0 : b.slice(db + 1));
}

/** The id of the last entry written to `stream` ('0-0' when none ever was). */
export async function streamPosition(redis: Redis, stream: string): Promise<string> {
  try {
    const info = (await redis.xinfo('STREAM', stream)) as unknown[];
    for (let i = 0; i + 1 < info.length; i += 2) if (info[i] === 'last-generated-id') return String(info[i + 1]);
  } catch (error) {
    if (!String(error).includes('no such key')) throw error;
  }
  return '0-0';
}

/** The marks of the sessions that arrived here lately, by client id. */
export class ArrivalMarks {
  private readonly marks = new Map<string, { position: string; until: number }>();
  private nextSweep = 0;

  /** `clientIds` arrived here when this node's stream stood at `position`. */
  mark(clientIds: Iterable<string>, position: string): void {
    const until = Date.now() + MARK_TTL_MS;
    for (const clientId of clientIds) this.marks.set(clientId, { position, until });
  }

  /**
   * For a stream entry `id` of this node's stream: the client ids it must not reach (arrived after
   * it was written), or undefined when there is none to check (the common case: no allocation).
   */
  arrivedAfter(id: string): Pick<ReadonlySet<string>, 'has'> | undefined {
    if (this.marks.size === 0) return undefined;
    const now = Date.now();
    if (now >= this.nextSweep) {
      this.nextSweep = now + 5000;
      for (const [clientId, mark] of this.marks) if (now >= mark.until) this.marks.delete(clientId);
      if (this.marks.size === 0) return undefined;
    }
    const marks = this.marks;
    return { has: (clientId) => {
      const mark = marks.get(clientId);
      return mark !== undefined && compareStreamIds(id, mark.position) <= 0;
    } };
  }

  /** Forgets every mark (the node was fenced: it holds no session any more). */
  clear(): void {
    this.marks.clear();
  }
}
