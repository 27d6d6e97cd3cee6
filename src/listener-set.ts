/**
 * Starts the planned MQTT listeners (TCP, TLS, WebSocket, WebSocket over TLS), each on all its
 * hosts, and explains failures: a port in use names the port, the address and the likely holder.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from './broker/logger.js';
import type { PlannedListener } from './config/listeners.js';
import type { ListenerView } from './http/api.js';
import { describePortHolder } from './transport/address-in-use.js';
import { TcpListener } from './transport/tcp.js';
import { TlsListener } from './transport/tls.js';
import type { Listener } from './transport/types.js';

/** A listener that is running, on one address. */
export interface BoundListener extends ListenerView {
  /** The setting it comes from ("listeners[1]", "port", "tls", "websocket"). */
  readonly setting: string;
}

/** The running listeners. */
export interface ListenerSet {
  readonly bound: readonly BoundListener[];
  /** TLS listeners, for certificate reload on SIGHUP. */
  readonly tls: readonly TlsListener[];
  close(): Promise<void>;
}

/** A listener that could not start: the message says which setting, port and address, and what to do. */
export class ListenError extends Error {
  readonly code = 'ERR_LISTEN';
}

type OnStream = Parameters<Listener['listen']>[0];

/** Starts every planned listener; on failure, stops the ones already started and throws a ListenError. */
export async function startListeners(planned: readonly PlannedListener[], onStream: OnStream, logger: Logger): Promise<ListenerSet> {
  const started: Listener[] = [];
  const tls: TlsListener[] = [];
  const bound: BoundListener[] = [];
  try {
    for (const plan of planned) {
      let port = plan.port; // with port 0, every host of one listener shares the first free port
      for (const host of plan.hosts) {
        const listener = await create(plan, host, port, logger);
        let address: AddressInfo;
        try {
          address = await listener.listen(onStream);
        } catch (error) {
          // A machine without IPv6 has no ::1; the IPv4 loopback is enough.
          if (plan.loopbackDefault && host === '::1') {
            logger.debug({ listener: plan.name, err: (error as Error).message }, 'IPv6 loopback not available');
            continue;
          }
          throw await explain(plan, host, port, error);
        }
        started.push(listener);
        if (listener instanceof TlsListener) tls.push(listener);
        port = address.port;
        bound.push({ name: plan.name, protocol: plan.protocol, address: address.address, port: address.port, setting: plan.setting });
        logListening(logger, plan, address);
      }
    }
  } catch (error) {
    await Promise.all(started.map((l) => l.close()));
    throw error;
  }
  return { bound, tls, close: async () => void (await Promise.all(started.map((l) => l.close()))) };
}

/** The listener of a plan; the WebSocket engine (ws) is loaded only for a WebSocket listener. */
async function create(plan: PlannedListener, host: string, port: number, logger: Logger): Promise<Listener> {
  const name = plan.name;
  if (plan.protocol === 'mqtt') return new TcpListener({ name, host, port });
  if (plan.protocol === 'mqtts') {
    const t = plan.tls;
    if (t === undefined) throw new ListenError(`${plan.setting}: an mqtts listener needs certFile and keyFile`);
    return new TlsListener({
      name,
      host,
      port,
      certFile: t.certFile,
      keyFile: t.keyFile,
      ...(t.caFile === undefined ? {} : { caFile: t.caFile }),
      requireClientCert: t.requireClientCert,
      ...(t.minVersion === undefined ? {} : { minVersion: t.minVersion }),
      ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
      onClientError: (error, remote) => logger.info({ listener: name, remote, err: error.message }, 'TLS handshake failed'),
    });
  }
  const ws = plan.ws ?? { path: '/mqtt', trustedProxies: [] };
  const { WebSocketListener } = await import('./transport/ws.js');
  return new WebSocketListener({ name, host, port, path: ws.path, trustedProxies: ws.trustedProxies, ...(plan.tls === undefined ? {} : { tls: { cert: plan.tls.certFile, key: plan.tls.keyFile } }) });
}

async function explain(plan: PlannedListener, host: string, port: number, error: unknown): Promise<Error> {
  const e = error as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') {
    return new ListenError(`${plan.setting} (${plan.name}): port ${port} on ${host} is already in use (EADDRINUSE), ${await describePortHolder(port)}; stop that process or choose another port`);
  }
  if (e.code === 'EADDRNOTAVAIL') return new ListenError(`${plan.setting} (${plan.name}): ${host} is not an address of this machine (EADDRNOTAVAIL); use one it has, or 0.0.0.0 for all`);
  if (e.code === 'EACCES') return new ListenError(`${plan.setting} (${plan.name}): not allowed to listen on port ${port} (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE`);
  if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') {
    return new ListenError(`${plan.setting} (${plan.name}): cannot read a TLS file: ${e.message}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

function logListening(logger: Logger, plan: PlannedListener, address: AddressInfo): void {
  const where = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  const fields = { listener: plan.name, host: address.address, port: address.port };
  if (plan.protocol === 'mqtt') logger.info(fields, `MQTT listening on mqtt://${where}`);
  else if (plan.protocol === 'mqtts') logger.info({ ...fields, requireClientCert: plan.tls?.requireClientCert === true }, `MQTT over TLS listening on mqtts://${where}`);
  else logger.info(fields, `MQTT over WebSocket listening on ${plan.protocol}://${where}${plan.ws?.path ?? '/mqtt'}`);
}
