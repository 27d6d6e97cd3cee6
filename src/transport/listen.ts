/** Binding a server to a host and port, with errors that say which. */
import type { AddressInfo, Server, Socket } from 'node:net';
import type { StreamInfo } from './types.js';

/** Binds `server` to host:port (0 picks a free port) and resolves with the bound address. */
export function listenOn(server: Server, host: string, port: number, backlog = 4096): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** How long a closing server waits for its connections to end before destroying them. */
const CLOSE_GRACE_MS = 2000;

/** The raw connections of `server` while they are open (for `closeServer`): a closure per connection, so only for listeners whose sockets may never reach the broker (TLS handshakes). */
export function trackConnections(server: Server): Set<Socket> {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  return open;
}

/**
 * Stops `server` accepting and resolves once it is closed. Connections still open after a short
 * grace (a peer that never answers the broker's close, a TLS handshake that never completes) are
 * destroyed, so a shutdown never waits on a client.
 */
export function closeServer(server: Server | undefined, open: ReadonlySet<Socket>): Promise<void> {
  if (server === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    const timer = setTimeout(() => {
      for (const socket of open) socket.destroy();
    }, CLOSE_GRACE_MS);
    timer.unref();
  });
}

/** What the broker is told of a new socket on listener `name`: the listener and the peer's address. */
export function socketInfo(socket: Socket, name: string): StreamInfo {
  const info: StreamInfo = { listener: name };
  if (socket.remoteAddress !== undefined) info.remoteAddress = socket.remoteAddress;
  if (socket.remotePort !== undefined) info.remotePort = socket.remotePort;
  return info;
}
