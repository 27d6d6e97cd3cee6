/**
 * The channel between a worker and the hub: frames (Buffers) in order both ways. On a machine it is
 * the cluster module's IPC channel with `serialization: 'advanced'` (Buffers cross as bytes); tests
 * may join a hub and a worker bus in one process with any other channel that keeps order.
 */

/** One end of a worker–hub channel. */
export interface FrameLink {
  /** Sends one frame; frames arrive in the order sent. */
  send(frame: Buffer): void;
  /** Calls `receive` with every frame that arrives. */
  onFrame(receive: (frame: Uint8Array) => void): void;
  /** Calls `closed` once when the other end is gone. */
  onClose(closed: () => void): void;
}

/** What `processLink` needs of a process or a cluster worker: Node's IPC channel. */
export interface IpcEndpoint {
  send?(message: unknown, sendHandle: undefined, options: object, callback: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
}

function ignore(): void {}

/**
 * A link over Node's IPC channel: in a worker, `process`; in the primary, the `cluster.Worker`.
 * Anything that is not a Buffer on the channel (the cluster module's own messages) is ignored.
 */
export function ipcLink(endpoint: IpcEndpoint): FrameLink {
  return {
    send(frame) {
      // A channel closing under a send (the other process died) is reported by onClose, not thrown.
      endpoint.send?.(frame, undefined, {}, ignore);
    },
    onFrame(receive) {
      endpoint.on('message', (message) => {
        if (message instanceof Uint8Array) receive(message);
      });
    },
    onClose(closed) {
      endpoint.on('disconnect', closed);
    },
  };
}
