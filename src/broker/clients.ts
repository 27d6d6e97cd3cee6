/** The connections of a broker: every open one, and those past CONNECT by client id and by listener. */
import type { Connection } from './connection.js';

/** Open connections, and which client id each connected one holds. */
export class ClientRegistry {
  private readonly open = new Set<Connection>();
  private readonly byClientId = new Map<string, Connection>();
  private readonly perListener = new Map<string, number>();

  /** Connections open, including those not yet past CONNECT. */
  get connectionCount(): number {
    return this.open.size;
  }

  /** Connections past CONNECT. */
  get onlineCount(): number {
    return this.byClientId.size;
  }

  /** A new stream became a connection. */
  opened(connection: Connection): void {
    this.open.add(connection);
  }

  /** `connection` completed CONNECT as its client id (any previous holder was closed first). */
  online(connection: Connection): void {
    this.byClientId.set(connection.clientId, connection);
    const listener = connection.info.listener;
    this.perListener.set(listener, (this.perListener.get(listener) ?? 0) + 1);
  }

  /** `connection` ended; `wasOnline`: it had completed CONNECT. */
  closed(connection: Connection, wasOnline: boolean): void {
    this.open.delete(connection);
    if (!wasOnline) return;
    if (this.byClientId.get(connection.clientId) === connection) this.byClientId.delete(connection.clientId);
    const listener = connection.info.listener;
    this.perListener.set(listener, (this.perListener.get(listener) ?? 1) - 1);
  }

  /** The connected client with this id. */
  get(clientId: string): Connection | undefined {
    return this.byClientId.get(clientId);
  }

  /** Connected clients on `listener`. */
  onlineOn(listener: string): number {
    return this.perListener.get(listener) ?? 0;
  }

  /** Every connected client. */
  connected(): IterableIterator<Connection> {
    return this.byClientId.values();
  }

  /** Every open connection (a copy: closing them while iterating is safe). */
  all(): Connection[] {
    return [...this.open];
  }

  /** Every open connection, live (for the periodic sweep; do not close while iterating). */
  each(): IterableIterator<Connection> {
    return this.open.values();
  }
}
