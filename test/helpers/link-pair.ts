/**
 * Two ends of a worker–hub channel in one process, over a real `MessageChannel` (frames are copied,
 * arrive asynchronously and in order, as over the IPC channel between processes), for tests that run
 * a hub and worker buses side by side. `cut()` ends the channel as a worker's death does.
 */
import { MessageChannel } from 'node:worker_threads';
import type { FrameLink } from '../../src/cluster/workers/link.js';

/** A connected pair: the hub's end and the worker's end. */
export interface LinkPair {
  hub: FrameLink;
  worker: FrameLink;
  /** Closes the channel (both ends hear it). */
  cut(): void;
}

/** A new channel. */
export function linkPair(): LinkPair {
  const { port1, port2 } = new MessageChannel();
  const end = (port: typeof port1): FrameLink => ({
    send(frame) {
      port.postMessage(frame);
    },
    onFrame(receive) {
      port.on('message', (message: unknown) => {
        if (message instanceof Uint8Array) receive(message);
      });
    },
    onClose(closed) {
      port.once('close', closed);
    },
  });
  return { hub: end(port1), worker: end(port2), cut: () => port1.close() };
}
