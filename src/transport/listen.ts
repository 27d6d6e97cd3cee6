/** Binding a server to a host and port, with errors that say which. */
import type { AddressInfo, Server } from 'node:net';

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
