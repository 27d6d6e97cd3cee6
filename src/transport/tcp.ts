/** The MQTT TCP listener: sockets handed to the broker as (stream, info). */
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Listener, StreamInfo } from './types.js';
import { closeServer, listenOn, socketInfo } from './listen.js';

/** Where a TCP listener binds. */
export interface TcpListenerOptions {
  name?: string;
  host: string;
  port: number;
}

const NONE: ReadonlySet<net.Socket> = new Set();

/** Plain MQTT over TCP. */
export class TcpListener implements Listener {
  readonly name: string;
  private server: net.Server | undefined;

  constructor(private readonly options: TcpListenerOptions) {
    this.name = options.name ?? 'tcp';
  }

  listen(onStream: (stream: Duplex, info: StreamInfo) => void): Promise<AddressInfo> {
    const server = net.createServer({ noDelay: true }, (socket) => onStream(socket, socketInfo(socket, this.name)));
    this.server = server;
    return listenOn(server, this.options.host, this.options.port);
  }

  /** Stops accepting. Every socket is the broker's from its first byte, and the broker closes them: nothing to track per connection. */
  close(): Promise<void> {
    return closeServer(this.server, NONE);
  }
}
