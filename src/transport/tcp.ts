import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Listener, StreamInfo } from './types.js';

/** Where a TCP listener binds. */
export interface TcpListenerOptions {
  name?: string;
  host: string;
  port: number;
}

/** Plain MQTT over TCP. */
export class TcpListener implements Listener {
  readonly name: string;
  private server: net.Server | undefined;

  constructor(private readonly options: TcpListenerOptions) {
    this.name = options.name ?? 'tcp';
  }

  listen(onStream: (stream: Duplex, info: StreamInfo) => void): Promise<AddressInfo> {
    const server = net.createServer({ noDelay: true }, (socket) => {
      const info: StreamInfo = { listener: this.name };
      if (socket.remoteAddress !== undefined) info.remoteAddress = socket.remoteAddress;
      if (socket.remotePort !== undefined) info.remotePort = socket.remotePort;
      onStream(socket, info);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.host, port: this.options.port, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}
