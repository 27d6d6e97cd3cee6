/** The transport port: a Listener turns connections into (Duplex, ConnectionInfo). */
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

/** What a transport tells about a new connection. */
export interface StreamInfo {
  listener: string;
  remoteAddress?: string;
  remotePort?: number;
  /** Subject fields of a verified TLS client certificate (TLS listeners that require one). */
  certificateSubject?: Readonly<Record<string, string>>;
}

/** A source of client streams (TCP, TLS, WebSocket). */
export interface Listener {
  readonly name: string;
  /** Starts listening; every accepted connection goes to `onStream`. */
  listen(onStream: (stream: Duplex, info: StreamInfo) => void): Promise<AddressInfo>;
  /** Stops accepting connections. */
  close(): Promise<void>;
}
