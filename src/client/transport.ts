/** Opens the byte stream under MQTT: TCP, TLS, or a WebSocket (sub-protocol "mqtt") as a Duplex. */
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { WebSocket, createWebSocketStream, type ClientOptions } from 'ws';
import { ConnectionError } from './errors.js';
import type { ResolvedOptions } from './options.js';

function tlsSettings(o: ResolvedOptions): ConnectionOptions {
  const t = o.tls;
  const settings: ConnectionOptions = { rejectUnauthorized: t.rejectUnauthorized ?? true };
  if (t.ca !== undefined) settings.ca = t.ca;
  if (t.cert !== undefined) settings.cert = t.cert;
  if (t.key !== undefined) settings.key = t.key;
  if (t.verifyHostname === false) settings.checkServerIdentity = () => undefined;
  // SNI must not be an IP address (RFC 6066); node checks the certificate against `host` anyway.
  const servername = t.servername ?? o.host;
  if (!/^[\d.]+$|:/.test(servername)) settings.servername = servername;
  return settings;
}

function describe(o: ResolvedOptions): string {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const path = o.protocol === 'ws' || o.protocol === 'wss' ? o.path : '';
  return `${o.protocol}://${host}:${o.port}${path}`;
}

/** Resolves with a connected stream, or rejects with ConnectionError (wrapping the system error). */
export function openTransport(o: ResolvedOptions): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      reject(new ConnectionError(`cannot connect to ${describe(o)}: ${error.message}`, { cause: error }));
    };
    if (o.protocol === 'mqtt' || o.protocol === 'mqtts') {
      const socket =
        o.protocol === 'mqtt'
          ? netConnect({ host: o.host, port: o.port, noDelay: true })
          : tlsConnect({ host: o.host, port: o.port, ...tlsSettings(o) });
      const ready = o.protocol === 'mqtt' ? 'connect' : 'secureConnect';
      socket.once('error', fail);
      socket.once(ready, () => {
        socket.off('error', fail);
        resolve(socket);
      });
      return;
    }
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    const scheme = o.protocol;
    const options: ClientOptions = { headers: o.wsHeaders, perMessageDeflate: false };
    if (scheme === 'wss') Object.assign(options, tlsSettings(o));
    const ws = new WebSocket(`${scheme}://${host}:${o.port}${o.path}`, ['mqtt'], options);
    ws.once('error', fail);
    ws.once('unexpected-response', (_request, response) => {
      fail(new Error(`HTTP ${response.statusCode ?? '?'} on WebSocket upgrade`));
      ws.terminate();
    });
    ws.once('open', () => {
      ws.off('error', fail);
      resolve(createWebSocketStream(ws));
    });
  });
}
