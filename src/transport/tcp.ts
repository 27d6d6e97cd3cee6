/** The MQTT TCP listener: sockets handed to the broker as (stream, info). */
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Listener, StreamInfo } from './types.js';
import { listenOn } from './listen.js';

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
    return listenOn(server, this.options.host, this.options.port);
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
