/** Acknowledgements held back until the store commit their messages belong to is durable, released in order. */
import type { Packet } from '../protocol/types.js';

/** A control packet, or an encoded PUBLISH held back with the acknowledgements. */
export type Held = Packet | Buffer;

/** Where released items go (the connection). */
export interface HeldSender {
  sendHeld(item: Held): void;
}

/**
 * The acknowledgements of one connection, in the order they must reach the client: a durable one
 * waits for its commit, every later one waits behind it [MQTT-4.6.0-2..4].
 */
export class AckQueue {
  private readonly items: Held[] = [];
  private readonly gens: number[] = [];
  private head = 0;

  /** True when nothing waits. */
  get empty(): boolean {
    return this.head === this.items.length;
  }

  /** The generation the last waiting item waits for (0 when empty). */
  get lastGen(): number {
    return this.empty ? 0 : (this.gens[this.gens.length - 1] as number);
  }

  /** Queues `item` until commit `gen` is durable. */
  push(item: Held, gen: number): void {
    this.items.push(item);
    this.gens.push(gen);
  }

  /** True when the first waiting item depends on commit `gen` or an earlier one. */
  waitsFor(gen: number): boolean {
    return !this.empty && (this.gens[this.head] as number) <= gen;
  }

  /** Hands every item whose commit is done (≤ `committedGen`) to `target`, in order; true when none is left. */
  release(committedGen: number, target: HeldSender): boolean {
    while (this.head < this.items.length && (this.gens[this.head] as number) <= committedGen) {
      const item = this.items[this.head] as Held;
      this.items[this.head] = undefined as unknown as Held;
      this.head++;
      target.sendHeld(item);
    }
    if (!this.empty) {
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.gens.splice(0, this.head);
        this.head = 0;
      }
      return false;
    }
    this.items.length = 0;
    this.gens.length = 0;
    this.head = 0;
    return true;
  }
}
