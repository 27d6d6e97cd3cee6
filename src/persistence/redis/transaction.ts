/**
 * The Redis transaction of one commit and the parts that join it: the store writes its operations,
 * and each joined part (the cluster bus's stream entries, acknowledgements, route changes, wills…)
 * adds its writes of the same turn to the same MULTI/EXEC.
 */
import type { ChainableCommander } from 'ioredis';
import type { StoreOp } from '../types.js';

/** A MULTI being built (ioredis queues commands on it until `exec`). */
export type Transaction = ChainableCommander;

/** Something whose writes of a turn commit in the store's transaction of that turn. */
export interface TransactionPart {
  /**
   * Adds this part's writes (queued since the last commit) to `tx`, which already holds the store's
   * `ops`. May return a function to call once Redis has answered the transaction, either way.
   */
  write(tx: Transaction, ops: readonly StoreOp[]): (() => void) | undefined;
}

/** Runs `tx`; rejects if it was aborted or any command in it failed. */
export async function execOrThrow(tx: Transaction): Promise<unknown[]> {
  const results = await tx.exec();
  if (results === null) throw new Error('Redis transaction aborted');
  const out: unknown[] = [];
  for (const [error, value] of results) {
    if (error !== null) throw error;
    out.push(value);
  }
  return out;
}
