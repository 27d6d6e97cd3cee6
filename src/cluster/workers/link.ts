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
 * The frames sent during one event-loop turn leave as one IPC message (each frame prefixed with its
 * length): under load a turn's claims, commits and answers cost one message, not one each.
 * Anything that is not a Buffer on the channel (the cluster module's own messages) is ignored.
 */
export function ipcLink(endpoint: IpcEndpoint): FrameLink {
  let queued: Buffer[] = [];
  let bytes = 0;
  const flush = (): void => {
    const frames = queued;
    const batch = Buffer.allocUnsafe(bytes);
    let p = 0;
    for (const frame of frames) {
      p = batch.writeUInt32BE(frame.length, p);
      p += frame.copy(batch, p);
    }
    queued = [];
    bytes = 0;
    // A channel closing under a send (the other process died) is reported by onClose, not thrown.
    endpoint.send?.(batch, undefined, {}, ignore);
  };
  return {
    send(frame) {
      if (queued.length === 0) setImmediate(flush);
      queued.push(frame);
      bytes += 4 + frame.length;
    },
    onFrame(receive) {
      endpoint.on('message', (message) => {
        if (!(message instanceof Uint8Array)) return;
        const batch = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
        for (let p = 0; p + 4 <= batch.length; ) {
          const length = batch.readUInt32BE(p);
          receive(batch.subarray(p + 4, p + 4 + length));
          p += 4 + length;
        }
      });
    },
    onClose(closed) {
      endpoint.on('disconnect', closed);
    },
  };
}
